"""The shared plumbing against real PostgreSQL and a real Kafka-protocol broker: the outbox
relay, the inbox, the consumer loop, dead-lettering, and a crash between commit and offset."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import APPLICATIONS, DLQ
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from shared.messaging.consumer import ConsumerLoop, DeadLetter, Subscription, batch_or_each, per_event
from shared.messaging.outbox import OutboxRelay, add_events
from shared.messaging.producer import make_producer
from tests.support.effects import CREATE_EFFECTS, effects_for, record_effect
from tests.support.kafka import read_topic
from tests.support.records import FakeRecord as _Record
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def scratch(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A service-like schema (outbox, inbox) plus an `effects` table with no unique key,
    so an effect applied twice would show as two rows."""
    upgrade(settings.database_url, "notify", schema="plumbing")
    engine = make_engine(settings.database_url, "plumbing")
    async with engine.begin() as conn:
        await conn.execute(text(CREATE_EFFECTS))
    yield make_sessionmaker(engine)
    await engine.dispose()


def sample(note: str, **extra: object) -> Event:
    return new_event(
        "application.received", source="tests", subject=f"app_{note}", data={"note": note, **extra}
    )


async def test_relay_publishes_committed_rows_in_order_and_nothing_rolled_back(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    key = f"91310115MA{uuid.uuid4().hex[:8]}"  # one key: one partition, so order is observable
    committed_first = [sample(f"a{i}") for i in range(30)]
    rolled_back = [sample(f"x{i}") for i in range(5)]
    committed_second = [sample(f"b{i}") for i in range(30)]
    async with scratch() as session, session.begin():
        await add_events(session, [(e, key) for e in committed_first])
    async with scratch() as session:
        await session.begin()
        await add_events(session, [(e, key) for e in rolled_back])
        await session.rollback()
    async with scratch() as session, session.begin():
        await add_events(session, [(e, key) for e in committed_second])

    ns = f"relay{uuid.uuid4().hex[:6]}."
    producer = make_producer(settings.kafka_bootstrap_servers, "test-relay")
    await producer.start()
    try:
        relay = OutboxRelay(scratch, producer, batch_max=7, namespace=ns)
        while await relay.drain_once():
            pass
    finally:
        await producer.stop()

    got = await read_topic(settings.kafka_bootstrap_servers, ns + APPLICATIONS, until=lambda got: len(got) >= 60)
    ids = [orjson.loads(value)["id"] for _, value in got]
    assert ids == [str(e.id) for e in committed_first + committed_second]
    assert {k for k, _ in got} == {key.encode()}
    async with scratch() as session:
        unpublished = await session.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    assert unpublished == 0


async def test_outbox_rows_cannot_be_rewritten_or_deleted(scratch: async_sessionmaker[AsyncSession]) -> None:
    event = sample("immutable")
    async with scratch() as session, session.begin():
        await add_events(session, [(event, "k")])
    with pytest.raises(Exception, match="append-only"):
        async with scratch() as session, session.begin():
            await session.execute(text("DELETE FROM outbox WHERE id = :i"), {"i": event.id})
    with pytest.raises(Exception, match="immutable"):
        async with scratch() as session, session.begin():
            await session.execute(text("UPDATE outbox SET topic = 'other' WHERE id = :i"), {"i": event.id})


def _loop(maker: async_sessionmaker[AsyncSession], name: str, settings: Settings) -> ConsumerLoop:
    return ConsumerLoop(
        service="plumbing",
        subscription=Subscription(name=name, topics=[APPLICATIONS], handle=per_event(record_effect)),
        maker=maker,
        bootstrap=settings.kafka_bootstrap_servers,
    )


async def test_inbox_skips_a_redelivered_event(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    loop = _loop(scratch, "inbox-test", settings)
    events = [sample(f"r{i}") for i in range(3)]
    records = [_Record(e.to_bytes(), i) for i, e in enumerate(events)]
    await loop.process(records)  # type: ignore[arg-type]
    await loop.process(records)  # redelivery of the whole batch
    await loop.process([records[1], records[1]])  # and a duplicate inside one batch
    counts = await effects_for(scratch, [e.id for e in events])
    assert counts == {e.id: 1 for e in events}
    assert loop.stats.duplicates == 5


async def test_poison_and_failing_events_are_dead_lettered_and_the_consumer_goes_on(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    loop = _loop(scratch, "dlq-test", settings)
    good_before, good_after = sample("before"), sample("after")
    failing = sample("boom", explode=True)
    records = [
        _Record(good_before.to_bytes(), 10),
        _Record(b"{not json", 11, key=b"poison-key"),
        _Record(orjson.dumps({"id": "nope"}), 12),
        _Record(failing.to_bytes(), 13),
        _Record(good_after.to_bytes(), 14),
    ]
    await loop.process(records)  # type: ignore[arg-type]
    counts = await effects_for(scratch, [good_before.id, good_after.id, failing.id])
    assert counts == {good_before.id: 1, good_after.id: 1}
    async with scratch() as session:
        dead = (
            await session.execute(
                text("SELECT key, envelope FROM outbox WHERE topic = :t ORDER BY seq"), {"t": DLQ}
            )
        ).all()
    assert len(dead) == 3
    offsets = [row.envelope["data"]["offset"] for row in dead]
    assert offsets == [11, 12, 13]
    assert "RuntimeError: this event always fails" in dead[2].envelope["data"]["error"]
    assert dead[0].key == "poison-key"
    assert dead[2].envelope["causation_id"] == str(failing.id)


async def record_effects_in_one_statement(
    session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter
) -> None:
    """A set-based handler: dead-letters what it can tell is bad, writes the rest at once;
    an event with "explode" breaks the statement (as a constraint violation would)."""
    keep = []
    for event in events:
        if event.data.get("skip"):
            dead_letter(event, "marked skip")
        else:
            keep.append(event)
    if any(e.data.get("explode") for e in keep):
        await session.execute(text("INSERT INTO effects (event_id, note) VALUES (:e, 'half written')"),
                              {"e": keep[0].id})
        raise RuntimeError("the batch statement failed")
    await session.execute(
        text("INSERT INTO effects (event_id, note) SELECT unnest(CAST(:ids AS uuid[])), 'batch'"),
        {"ids": [str(e.id) for e in keep]},
    )


async def _dead_offsets(maker: async_sessionmaker[AsyncSession], consumer: str) -> list[int]:
    async with maker() as session:
        rows = (await session.execute(
            text("SELECT envelope FROM outbox WHERE topic = :t AND envelope->'data'->>'consumer' = :c ORDER BY seq"),
            {"t": DLQ, "c": consumer},
        )).all()
    return [row.envelope["data"]["offset"] for row in rows]


async def test_batch_handler_applies_a_clean_batch_and_keeps_its_own_dead_letters(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    loop = ConsumerLoop(
        service="plumbing",
        subscription=Subscription(name="batch-clean", topics=[APPLICATIONS],
                                  handle=batch_or_each(record_effects_in_one_statement, each=record_effect)),
        maker=scratch, bootstrap=settings.kafka_bootstrap_servers,
    )
    events = [sample("b0"), sample("b1", skip=True), sample("b2")]
    await loop.process([_Record(e.to_bytes(), 20 + i) for i, e in enumerate(events)])  # type: ignore[arg-type]
    counts = await effects_for(scratch, [e.id for e in events])
    assert counts == {events[0].id: 1, events[2].id: 1}
    assert await _dead_offsets(scratch, "plumbing.batch-clean") == [21]


async def test_a_failing_batch_falls_back_to_one_event_at_a_time_without_its_half_writes(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    loop = ConsumerLoop(
        service="plumbing",
        subscription=Subscription(name="batch-fallback", topics=[APPLICATIONS],
                                  handle=batch_or_each(record_effects_in_one_statement, each=record_effect)),
        maker=scratch, bootstrap=settings.kafka_bootstrap_servers,
    )
    events = [sample("f0"), sample("f1", skip=True), sample("f2", explode=True), sample("f3")]
    await loop.process([_Record(e.to_bytes(), 30 + i) for i, e in enumerate(events)])  # type: ignore[arg-type]
    counts = await effects_for(scratch, [e.id for e in events])
    # The batch's half write and its "skip" dead letter are gone; one at a time, "skip" applies
    # (record_effect does not know the flag) and only the exploding event is dead-lettered.
    assert counts == {events[0].id: 1, events[1].id: 1, events[3].id: 1}
    assert await _dead_offsets(scratch, "plumbing.batch-fallback") == [32]


async def test_by_default_the_fallback_is_the_batch_handler_one_event_at_a_time(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    loop = ConsumerLoop(
        service="plumbing",
        subscription=Subscription(name="batch-own-fallback", topics=[APPLICATIONS],
                                  handle=batch_or_each(record_effects_in_one_statement)),
        maker=scratch, bootstrap=settings.kafka_bootstrap_servers,
    )
    events = [sample("o0"), sample("o1", skip=True), sample("o2", explode=True), sample("o3")]
    await loop.process([_Record(e.to_bytes(), 40 + i) for i, e in enumerate(events)])  # type: ignore[arg-type]
    counts = await effects_for(scratch, [e.id for e in events])
    # Alone, "skip" is still dead-lettered by the handler's own check, "explode" by its failure;
    # the half write of each failed attempt is gone.
    assert counts == {events[0].id: 1, events[3].id: 1}
    assert await _dead_offsets(scratch, "plumbing.batch-own-fallback") == [41, 42]


async def test_poison_message_reaches_the_dlq_topic_through_a_running_consumer(
    scratch: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ns = f"dlq{uuid.uuid4().hex[:6]}."
    from shared.messaging.topics import ensure_topics

    await ensure_topics(settings.kafka_bootstrap_servers, partitions=1, namespace=ns)
    producer = make_producer(settings.kafka_bootstrap_servers, "test-dlq")
    await producer.start()
    relay = OutboxRelay(scratch, producer, namespace=ns, poll_seconds=0.05)
    loop = ConsumerLoop(
        service="plumbing",
        subscription=Subscription(name="dlq-live", topics=[APPLICATIONS], handle=per_event(record_effect)),
        maker=scratch,
        bootstrap=settings.kafka_bootstrap_servers,
        on_commit=relay.wake,
        namespace=ns,
    )
    good = sample("live-good")
    try:
        await producer.send_and_wait(ns + APPLICATIONS, b"\x00garbage", key=b"k1")
        await producer.send_and_wait(ns + APPLICATIONS, good.to_bytes(), key=b"k1")
        tasks = [asyncio.create_task(loop.run()), asyncio.create_task(relay.run())]
        dead = await read_topic(settings.kafka_bootstrap_servers, ns + DLQ,
                                until=lambda got: any(_from_topic(v, ns + APPLICATIONS) for _, v in got))
        await eventually(lambda: effects_for(scratch, [good.id]), "the good event applied", timeout_s=10)
    finally:
        loop.stop()
        relay.stop()
        await asyncio.wait(tasks, timeout=10)
        await producer.stop()
    # Earlier tests left dead letters in this outbox too; ours is the one from this topic.
    ours = [orjson.loads(v) for _, v in dead if _from_topic(v, ns + APPLICATIONS)]
    assert len(ours) == 1
    assert ours[0]["type"] == "event.dead_lettered"
    assert ours[0]["data"]["offset"] == 0
    assert await effects_for(scratch, [good.id]) == {good.id: 1}


def _from_topic(dead_letter: bytes | None, topic: str) -> bool:
    return dead_letter is not None and orjson.loads(dead_letter)["data"]["topic"] == topic


CRASHING_CONSUMER = """
import asyncio, os, signal, sys
from shared.messaging.consumer import ConsumerLoop, Subscription, per_event
from shared.db.engine import make_engine, make_sessionmaker
from shared.contracts.topics import APPLICATIONS
from tests.support.effects import record_effect

class CrashAfterCommit(ConsumerLoop):
    async def process(self, records):
        await super().process(records)
        # The database transaction has committed; the offset commit has not happened.
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    db_url, bootstrap, ns, crash = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "crash"
    maker = make_sessionmaker(make_engine(db_url, "plumbing"))
    cls = CrashAfterCommit if crash else ConsumerLoop
    loop = cls(service="plumbing", subscription=Subscription(name="crashy", topics=[APPLICATIONS],
               handle=per_event(record_effect)), maker=maker, bootstrap=bootstrap, namespace=ns, batch_max=1000)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(float(sys.argv[5]))
    loop.stop()
    await task

asyncio.run(main())
"""


async def test_consumer_killed_after_db_commit_before_offset_commit_applies_nothing_twice(
    scratch: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    ns = f"crash{uuid.uuid4().hex[:6]}."
    from shared.messaging.topics import ensure_topics

    await ensure_topics(settings.kafka_bootstrap_servers, partitions=1, namespace=ns)
    events = [sample(f"c{i}") for i in range(20)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for e in events:
            await producer.send(ns + APPLICATIONS, e.to_bytes(), key=b"same-key")
        await producer.flush()
    finally:
        await producer.stop()
    script = tmp_path / "crashing_consumer.py"
    script.write_text(CRASHING_CONSUMER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [settings.database_url, settings.kafka_bootstrap_servers, ns]

    crashed = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(script), *args, "crash", "30"], env=env, timeout=60, cwd=ROOT
    )
    assert crashed.returncode == -signal.SIGKILL
    assert await effects_for(scratch, [e.id for e in events]), "the crashing consumer committed nothing"

    group = f"{ns}grantline-plumbing.crashy"
    resumed = subprocess.Popen([sys.executable, str(script), *args, "normal", "60"], env=env, cwd=ROOT)
    try:
        # Wait until the restarted consumer has committed past the last event: only then
        # has every redelivered event been through the inbox.
        assert await committed_offset_reaches(
            settings.kafka_bootstrap_servers, group, ns + APPLICATIONS, len(events), timeout_s=45
        )
    finally:
        resumed.kill()
        resumed.wait()
    counts = await effects_for(scratch, [e.id for e in events])
    assert counts == {e.id: 1 for e in events}


async def committed_offset_reaches(
    bootstrap: str, group: str, topic: str, target: int, timeout_s: float
) -> bool:
    from aiokafka import TopicPartition

    # An assigned (not subscribed) consumer reads the group's committed offset without joining it.
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        tp = TopicPartition(topic, 0)
        probe.assign([tp])
        committed = await eventually(lambda: probe.committed(tp), f"{group} committed past {target}",
                                     timeout_s=timeout_s, every_s=0.3,
                                     until=lambda committed: committed is not None and committed >= target)
        return bool(committed >= target)
    finally:
        await probe.stop()


async def test_relay_republishes_what_a_restarted_broker_forgot(
    scratch: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from shared.messaging.topics import ensure_topics
    from tools.stack.embedded import free_port, start_tansu, stop_tansu

    port = free_port()
    pidfile = tmp_path / "tansu.pid"
    # start_tansu waits for the broker with its own event loop: run it on a thread.
    bootstrap = await asyncio.to_thread(start_tansu, port, tmp_path / "tansu.log", pidfile=pidfile)
    ns = f"amnesia{uuid.uuid4().hex[:6]}."
    try:
        await ensure_topics(bootstrap, partitions=1, namespace=ns)
        async with scratch() as session, session.begin():
            await session.execute(text("UPDATE outbox SET published_at = now() WHERE published_at IS NULL"))
            await session.execute(text("DELETE FROM relay_offsets"))
        events = [sample(f"m{i}") for i in range(12)]
        async with scratch() as session, session.begin():
            await add_events(session, [(e, "amnesia-key") for e in events])
        producer = make_producer(bootstrap, "amnesia")
        await producer.start()
        relay = OutboxRelay(scratch, producer, namespace=ns, bootstrap=bootstrap)
        while await relay.drain_once():
            pass
        assert await relay.check_broker_amnesia() is False  # nothing lost yet
        await producer.stop()

        stop_tansu(pidfile)  # the in-memory broker forgets everything
        await asyncio.to_thread(start_tansu, port, tmp_path / "tansu2.log", pidfile=pidfile)
        await ensure_topics(bootstrap, partitions=1, namespace=ns)

        producer = make_producer(bootstrap, "amnesia2")
        await producer.start()
        relay = OutboxRelay(scratch, producer, namespace=ns, bootstrap=bootstrap)
        try:
            assert await relay.check_broker_amnesia() is True
            while await relay.drain_once():
                pass
        finally:
            await producer.stop()
        got = await read_topic(bootstrap, ns + APPLICATIONS, until=lambda got: len(got) >= 12)
        # Earlier tests' rows are re-published too (they are recent history); ours come in order.
        wanted = [str(e.id) for e in events]
        assert [i for i in (orjson.loads(v)["id"] for _, v in got) if i in set(wanted)] == wanted
        assert relay.redriven >= 12
    finally:
        stop_tansu(pidfile)
