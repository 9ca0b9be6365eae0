"""The test fixtures give a working PostgreSQL and a working Kafka-protocol broker."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.servers import create_database, drop_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_postgres_answers(pg_admin_dsn: str) -> None:
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert int(await conn.fetchval("SHOW max_connections")) >= 100
    finally:
        await conn.close()


async def test_fresh_database_is_isolated(pg_admin_dsn: str, fresh_db_dsn: str) -> None:
    other = create_database(pg_admin_dsn)
    try:
        a = await asyncpg.connect(fresh_db_dsn)
        b = await asyncpg.connect(other)
        try:
            assert await a.fetchval("SELECT current_database()") != await b.fetchval(
                "SELECT current_database()"
            )
            await a.execute("CREATE TABLE only_here (x int)")
            await a.execute("INSERT INTO only_here VALUES (7)")
            assert await a.fetchval("SELECT x FROM only_here") == 7
            assert await b.fetchval("SELECT to_regclass('only_here')") is None
        finally:
            await a.close()
            await b.close()
    finally:
        drop_database(pg_admin_dsn, other)
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        name = other.rsplit("/", 1)[1]
        assert await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None
    finally:
        await conn.close()


async def _consume(consumer: AIOKafkaConsumer, want: int, within: float = 20.0) -> list[tuple[bytes, bytes]]:
    """`want` messages, taking at most that many."""
    got: list[tuple[bytes, bytes]] = []

    async def enough() -> bool:
        batch = await consumer.getmany(timeout_ms=500, max_records=want - len(got))
        for records in batch.values():
            got.extend((r.key or b"", r.value or b"") for r in records)
        return len(got) >= want

    await eventually(enough, f"{want} messages", timeout_s=within, every_s=0)
    return got


async def test_broker_topics_produce_consume_commit_resume(kafka_bootstrap: str) -> None:
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=3, replication_factor=1)])
        await eventually(admin.list_topics, f"{topic} listed", timeout_s=5, every_s=0.1,
                         until=lambda topics: topic in topics)
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
    finally:
        await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Tansu completes a join after about half the session timeout, and a rejoin after a member
            # left only once that member's session expired: short sessions keep the test fast.
            session_timeout_ms=1500,
            heartbeat_interval_ms=300,
        )

    first = consumer()
    await first.start()
    try:
        got = await _consume(first, 12)
        assert len(got) >= 12
        # keyed messages: every key lands on a single partition, in send order
        await first.commit()
        committed = {}
        for tp in first.assignment():
            committed[tp.partition] = await first.committed(tp)
        assert sum(v or 0 for v in committed.values()) == len(got)
    finally:
        await first.stop()

    second = consumer()
    await second.start()
    try:
        rest = await _consume(second, 20 - len(got))
        assert len(rest) == 20 - len(got)
        values = sorted(int(v[1:]) for _, v in got + rest)
        assert values == list(range(20)), "every message exactly once across the two consumers"
        extra = await second.getmany(timeout_ms=1000)  # a bounded poll: nothing more arrives in it
        assert not any(extra.values())
    finally:
        await second.stop()

    # per-key order: values for one key arrive in increasing order
    by_key: dict[bytes, list[int]] = {}
    for k, v in got + rest:
        by_key.setdefault(k, []).append(int(v[1:]))
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await check.start()
    try:
        parts = check.partitions_for_topic(topic) or set()
        assert len(parts) == 3
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await check.end_offsets(tps)
        assert sum(ends.values()) == 20
    finally:
        await check.stop()
