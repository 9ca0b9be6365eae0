"""The broker from a test's side: publishing an envelope, reading a topic from its beginning."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.config.settings import Settings
from shared.contracts.envelope import Event
from tests.support.waiting import eventually


class Message(NamedTuple):
    key: bytes | None
    value: bytes | None


async def publish(producer: AIOKafkaProducer, settings: Settings, topic: str, event: Event, key: str) -> None:
    """`event` on the settings' namespaced `topic`, keyed as the services key it."""
    await producer.send_and_wait(settings.topic_namespace + topic, event.to_bytes(), key=key.encode())


async def read_topic(bootstrap: str, topic: str, until: Callable[[list[Message]], bool],
                     timeout_s: float = 20.0) -> list[Message]:
    """The messages on `topic` from its beginning, read until `until(messages)` holds, and then on
    to the ends the partitions had at that moment: an extra message already there shows too.
    Partitions are assigned by hand, so there is no consumer-group join to wait for."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    got: list[Message] = []
    try:
        async def partitions() -> set[int]:
            await consumer.topics()  # a metadata refresh: the topic may be new to this client
            return consumer.partitions_for_topic(topic) or set()

        assigned = [TopicPartition(topic, p)
                    for p in await eventually(partitions, f"{topic} known", timeout_s=timeout_s)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning()

        async def fetched() -> list[Message]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(Message(r.key, r.value) for r in records)
            return got

        await eventually(fetched, f"the awaited messages on {topic}", timeout_s=timeout_s, every_s=0,
                         until=until)
        ends = await consumer.end_offsets(assigned)

        async def at_ends() -> bool:
            positions = {tp: await consumer.position(tp) for tp in assigned}
            if all(positions[tp] >= ends[tp] for tp in assigned):
                return True
            await fetched()
            return False

        await eventually(at_ends, f"{topic} read to its ends", timeout_s=timeout_s, every_s=0)
    finally:
        await consumer.stop()
    return got
