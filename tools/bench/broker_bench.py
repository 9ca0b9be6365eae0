"""The end-to-end baseline: raw produce + consume msgs/s through the same broker (aiokafka, 1 KiB
messages, the services' producer settings, one consumer group reading while the producer writes)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.messaging.producer import make_producer
from tools.bench.common import env_int, scaled

PARTITIONS = 6
SIZE = 1024


async def _bench(bootstrap: str, n: int) -> dict[str, Any]:
    topic = f"bench{uuid.uuid4().hex[:8]}.raw"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}.g",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=2000)
    producer = make_producer(bootstrap, client_id="bench-raw")
    await consumer.start()
    await producer.start()
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment():  # joined the group before the clock starts
            await consumer.getmany(timeout_ms=100)
            if time.monotonic() > deadline:
                raise TimeoutError("the raw consumer got no partitions")
        payload = os.urandom(SIZE // 2).hex().encode()
        received = 0

        async def consume() -> None:
            nonlocal received
            while received < n:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    received += len(records)
                    if records:
                        await consumer.commit({tp: records[-1].offset + 1})

        started = time.perf_counter()
        reader = asyncio.create_task(consume())
        futures = []
        for i in range(n):
            futures.append(await producer.send(topic, payload, key=b"k%d" % (i % 200)))
        await asyncio.gather(*futures)
        produced = time.perf_counter()
        await asyncio.wait_for(reader, 120)
        done = time.perf_counter()
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "broker_baseline_msgs_per_s": round(n / (done - started), 1),
        "broker_produce_msgs_per_s": round(n / (produced - started), 1),
        "broker_msgs": n,
        "broker_msg_bytes": SIZE,
    }


def run_broker_bench(bootstrap: str) -> dict[str, Any]:
    n = env_int("GRANTLINE_BENCH_BROKER_N", scaled(20_000, minimum=1000))
    return asyncio.run(_bench(bootstrap, n))
