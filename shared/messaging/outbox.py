"""Transactional outbox: events are rows written in the caller's transaction; a relay
publishes them in order and marks them sent. Rows are kept: they are the event history."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event
from shared.contracts.topics import TOPIC_FOR_TYPE
from shared.db.repository import Repository
from shared.kernel.retry import Backoff
from shared.observability.metrics import OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


# An outbox row's columns, in the order of the one INSERT below (the envelope as JSON text).
OUTBOX_COLUMNS = ("id", "topic", "key", "type", "subject", "envelope")


def outbox_row(event: Event, key: str, topic: str | None = None, envelope: str | None = None) -> dict[str, object]:
    """The outbox row of `event` under Kafka key `key`. `envelope` is the event's JSON text when it
    must go out exactly as it was received (a re-drive), not as re-serialised here."""
    return {
        "id": event.id,
        "topic": topic or TOPIC_FOR_TYPE[event.type],
        "key": key,
        "type": event.type,
        "subject": event.subject,
        "envelope": envelope if envelope is not None else event.to_json(),
    }


def outbox_insert(rows: str, *, skip_taken: bool = False) -> str:
    """The outbox INSERT (the only one) as SQL text, to run alone (`write_outbox_rows`) or as one
    data-modifying CTE of a bigger statement: intake's group commit writes claims, applications,
    timelines and outbox rows in one statement. `rows` is a query whose columns are, in order,
    OUTBOX_COLUMNS (id a uuid, envelope JSON text); rows go in in the order it yields them. With
    `skip_taken`, a row whose id is in the outbox already is left out."""
    columns = ", ".join(OUTBOX_COLUMNS)
    sql = (
        f"INSERT INTO outbox ({columns}) "
        f"SELECT id, topic, key, type, subject, CAST(envelope AS jsonb) FROM ({rows}) AS r({columns})"
    )
    return sql + " ON CONFLICT (id) DO NOTHING" if skip_taken else sql


_UNNEST_ROWS = "SELECT * FROM unnest(" + ", ".join(
    f"CAST(:{name} AS {'uuid' if name == 'id' else 'text'}[])" for name in OUTBOX_COLUMNS
) + ")"
_INSERT_ROWS = text(outbox_insert(_UNNEST_ROWS))
_INSERT_NEW_ROWS = text(outbox_insert(_UNNEST_ROWS, skip_taken=True))


async def write_outbox_rows(
    session: AsyncSession, rows: Sequence[Mapping[str, object]], *, skip_taken: bool = False
) -> int:
    """Write outbox rows (`outbox_row`) in the session's transaction, in one statement; how many
    went in (with `skip_taken`, those whose id was not in the outbox yet)."""
    if not rows:
        return 0
    params: dict[str, list[object]] = {name: [row[name] for row in rows] for name in OUTBOX_COLUMNS}
    params["id"] = [str(row["id"]) for row in rows]
    result = await session.execute(_INSERT_NEW_ROWS if skip_taken else _INSERT_ROWS, params)
    return cast(CursorResult[Any], result).rowcount if skip_taken else len(rows)


async def add_events(session: AsyncSession, events: Iterable[tuple[Event, str]]) -> int:
    """Write (event, kafka key) pairs into the outbox of the session's schema, in one statement."""
    return await write_outbox_rows(session, [outbox_row(event, key) for event, key in events])


class PublishingRepository(Repository):
    """A repository whose changes publish events: they go into the outbox in the caller's
    transaction, so they are published if, and only if, the change commits."""

    async def add_events(self, events: Iterable[tuple[Event, str]]) -> None:
        """(event, Kafka key) pairs into the outbox, published after commit."""
        await add_events(self.session, events)


async def outbox_backlog(session: AsyncSession) -> int:
    """Outbox rows not yet published: what the relay still owes the broker."""
    backlog = await session.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    return int(backlog or 0)


async def _record_offsets(session: AsyncSession, rows: Sequence[Any], acks: Sequence[Any]) -> None:
    last: dict[tuple[str, int], tuple[int, str]] = {}
    for row, ack in zip(rows, acks, strict=True):
        key = (ack.topic, ack.partition)
        if key not in last or ack.offset > last[key][0]:
            last[key] = (ack.offset, str(row.id))
    if not last:
        return
    await session.execute(
        text(
            "INSERT INTO relay_offsets (topic, partition, last_offset, event_id) "
            "SELECT * FROM unnest(CAST(:t AS text[]), CAST(:p AS int[]), CAST(:o AS bigint[]), CAST(:e AS uuid[])) "
            "ON CONFLICT (topic, partition) DO UPDATE "
            "SET last_offset = EXCLUDED.last_offset, event_id = EXCLUDED.event_id "
            "WHERE EXCLUDED.last_offset >= relay_offsets.last_offset"
        ),
        {
            "t": [k[0] for k in last],
            "p": [k[1] for k in last],
            "o": [v[0] for v in last.values()],
            "e": [v[1] for v in last.values()],
        },
    )


async def _forgotten(bootstrap: str, known: Sequence[Any]) -> list[Any]:
    """The partitions whose recorded event is no longer where the broker put it."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await probe.start()
    lost = []
    try:
        for row in known:
            tp = TopicPartition(row.topic, row.partition)
            probe.assign([tp])
            probe.seek(tp, row.last_offset)
            batch = await probe.getmany(tp, timeout_ms=2000, max_records=1)
            records = batch.get(tp, [])
            if not records:
                # The fetch's high watermark is exact (ListOffsets is not, on Tansu): a partition
                # that ends at or before the recorded offset was rebuilt shorter.
                high = probe.highwater(tp)
                if high is not None and high <= row.last_offset:
                    lost.append(row)
                continue  # otherwise no answer in time: inconclusive, look again next round
            try:
                same = records[0].offset == row.last_offset and orjson.loads(records[0].value)["id"] == str(
                    row.event_id
                )
            except Exception:
                same = False
            if not same:
                lost.append(row)  # another event sits there: the partition was rebuilt
    finally:
        await probe.stop()
    return lost


class OutboxRelay:
    """Publishes unsent outbox rows in `seq` order. One relay per schema at a time holds an
    advisory lock, so two instances never interleave; a crash after send and before the
    mark re-sends, which the consumers' inbox absorbs."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        *,
        batch_max: int = 500,
        poll_seconds: float = 0.5,
        namespace: str = "",
        service: str = "",
        bootstrap: str | None = None,
        amnesia_check_seconds: float = 5.0,
        redrive_window_seconds: int = 86_400,
        on_amnesia: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_amnesia = on_amnesia
        self._namespace = namespace
        self._service = service or "unknown"
        self._bootstrap = bootstrap
        self._amnesia_check_seconds = amnesia_check_seconds
        self._redrive_window_seconds = redrive_window_seconds
        self._last_amnesia_check = 0.0
        self.redriven = 0
        self._maker = maker
        self.producer = producer
        self._batch_max = batch_max
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._maker() as session, session.begin():
            locked = await session.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext('grantline.outbox.' || current_schema()))")
            )
            if not locked:
                return 0
            rows = (
                await session.execute(
                    text(
                        # The stored JSON text goes out as is: no decode and re-encode per event.
                        "SELECT seq, id, topic, key, envelope::text AS envelope FROM outbox WHERE published_at IS NULL "
                        "ORDER BY seq LIMIT :n"
                    ),
                    {"n": self._batch_max},
                )
            ).all()
            if not rows:
                return 0
            futures = [
                await self.producer.send(
                    self._namespace + row.topic, row.envelope.encode(), key=row.key.encode()
                )
                for row in rows
            ]
            acks = await asyncio.gather(*futures)
            await session.execute(
                text("UPDATE outbox SET published_at = now() WHERE seq = ANY(:seqs)"),
                {"seqs": [row.seq for row in rows]},
            )
            await _record_offsets(session, rows, acks)
        self.published += len(rows)
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def check_broker_amnesia(self) -> bool:
        """Re-publish recent history when the broker has lost what it acknowledged.

        An in-memory broker that restarts keeps no messages: events published but not yet
        consumed would be stuck forever. Their rows are still here, so mark the recent ones
        unpublished again; the consumers' inboxes make the repeats harmless.
        """
        if not self._bootstrap:
            return False
        async with self._maker() as session:
            known = (
                await session.execute(
                    text("SELECT topic, partition, last_offset, event_id FROM relay_offsets")
                )
            ).all()
        if not known:
            return False
        lost = await _forgotten(self._bootstrap, known)
        if not lost:
            return False
        async with self._maker() as session, session.begin():
            result = await session.execute(
                text(
                    "UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL "
                    "AND published_at > now() - make_interval(secs => :w)"
                ),
                {"w": self._redrive_window_seconds},
            )
            await session.execute(text("DELETE FROM relay_offsets"))
        count = int(getattr(result, "rowcount", 0) or 0)
        self.redriven += count
        log.warning(
            "broker lost acknowledged events; re-publishing recent outbox history",
            extra={"partitions_lost": len(lost), "rows": count},
        )
        return True

    async def _maybe_check_amnesia(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_amnesia_check < self._amnesia_check_seconds:
            return
        self._last_amnesia_check = now
        try:
            if await self.check_broker_amnesia():
                self._on_amnesia()
                self.wake()
        except Exception:
            log.info("broker amnesia check failed; will retry", exc_info=True)

    async def run(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            await self._maybe_check_amnesia()
            try:
                count = await self.drain_once()
                backoff.reset()
                if count >= self._batch_max:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay failed; will retry", exc_info=True)
                await backoff.sleep()
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            except TimeoutError:
                pass
