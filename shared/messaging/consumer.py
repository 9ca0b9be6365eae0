"""The one consumer loop: consumer groups, each fetch's records in one transaction,
inbox dedupe, per-event savepoints with bounded retries, dead-letter through the outbox,
and the offset committed only after the database commit."""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event, PoisonEvent, parse_event
from shared.contracts.events import EventDeadLettered, new_typed_event
from shared.db.transient import is_transient
from shared.kernel.retry import Backoff
from shared.messaging.inbox import claim_new
from shared.messaging.outbox import add_events
from shared.observability.logs import correlation_id
from shared.observability.metrics import BATCH_SIZE, CONSUMED, DLQ_TOTAL

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, Event], Awaitable[None]]


class DeadLetter(Protocol):
    def __call__(self, event: Event, error: BaseException | str) -> None: ...


class BatchHandler(Protocol):
    """Handles a fetch's new events inside one open transaction: each partition's in their
    order, partitions one after the other (events of one applicant share a partition).

    It must isolate each event's effect (savepoints) and call `dead_letter` for events
    that cannot be applied; an exception escaping it rolls back the whole batch.
    """

    async def __call__(
        self, session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter
    ) -> None: ...


def per_event(handler: EventHandler, max_attempts: int = 3) -> BatchHandler:
    """Adapt a one-event handler: a savepoint per event, bounded retries, then dead-letter."""

    async def handle_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
        for event in events:
            token = correlation_id.set(event.correlation_id)
            try:
                for attempt in range(1, max_attempts + 1):
                    try:
                        async with session.begin_nested():
                            await handler(session, event)
                        break
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        log.warning(
                            "handler failed",
                            extra={"event_id": str(event.id), "attempt": attempt},
                            exc_info=True,
                        )
                        if attempt == max_attempts:
                            dead_letter(event, exc)
            finally:
                correlation_id.reset(token)

    return handle_batch


def one_at_a_time(batch: BatchHandler) -> EventHandler:
    """The batch handler applied to a batch of one. What it would dead-letter is raised
    instead, so that `per_event` retries it and then dead-letters it."""

    async def handle(session: AsyncSession, one: Event) -> None:
        def reject(event: Event, error: BaseException | str) -> None:
            raise error if isinstance(error, BaseException) else ValueError(error)

        await batch(session, [one], reject)

    return handle


def batch_or_each(batch: BatchHandler, max_attempts: int = 3, *, each: EventHandler | None = None) -> BatchHandler:
    """A set-based handler for the common case, the per-event path when the batch fails.

    `batch` applies the whole batch with a few statements (one savepoint around it all); it
    may dead-letter events it can tell are bad before writing. If it raises anything but
    infrastructure trouble, its writes and its dead letters are rolled back and every event
    goes through `each` (by default `batch` itself, one event at a time) with its own
    savepoint and retries: one bad event costs the batch its speed, never its neighbours.
    """
    fallback = per_event(each or one_at_a_time(batch), max_attempts)

    async def handle_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
        held: list[tuple[Event, BaseException | str]] = []

        def hold(event: Event, error: BaseException | str) -> None:
            held.append((event, error))

        try:
            async with session.begin_nested():
                await batch(session, events, hold)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("batch handler failed; applying one event at a time", exc_info=True)
            await fallback(session, events, dead_letter)
            return
        for event, error in held:
            dead_letter(event, error)

    return handle_batch


@dataclass
class Subscription:
    name: str  # the inbox consumer name and the consumer group's suffix
    topics: Sequence[str]
    handle: BatchHandler
    only_types: frozenset[str] | None = None  # other types on these topics are acknowledged unread


@dataclass
class ConsumerStats:
    batches: int = 0
    events: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    last_batch_size: int = 0
    lag: dict[str, int] = field(default_factory=dict)


# Data no copy of an event may hold (CONTRACT.md: the objector's name and contact are in no event
# but objection.filed): a dead letter keeps the event with these fields redacted, and its error
# and trace texts without their values. Re-driving it gives the consumer the redacted copy, which
# serves every consumer but notify (the one that stores them, and it does not consume the event).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {"objection.filed": ("name", "organisation", "contact")}
REDACTED = "[redacted]"


def _personal_values(event: Event | None) -> list[str]:
    if event is None:
        return []
    return [str(v) for f in PERSONAL_FIELDS.get(event.type, ()) if (v := event.data.get(f)) not in (None, "")]


def _redacted(event: Event) -> bytes:
    fields = PERSONAL_FIELDS[event.type]
    data = {k: REDACTED if k in fields and v is not None else v for k, v in event.data.items()}
    return event.model_copy(update={"data": data}).to_bytes()


def _scrubbed(text: str, values: Sequence[str]) -> str:
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def parked_bytes(value: bytes | None) -> bytes | None:
    """A message as a dead letter keeps it: an event with personal fields (PERSONAL_FIELDS)
    redacted, anything else as it came."""
    try:
        event = parse_event(value)
    except PoisonEvent:
        return value
    return _redacted(event) if event.type in PERSONAL_FIELDS else value


def dead_letter_event(
    service: str,
    consumer: str,
    record: ConsumerRecord[Any, Any],
    error: BaseException | str,
    event: Event | None,
) -> Event:
    personal = _personal_values(event)
    message = _jsonb_safe(_scrubbed(error if isinstance(error, str) else f"{type(error).__name__}: {error}", personal))
    value = record.value if isinstance(record.value, bytes | bytearray) else None
    if value is not None and event is not None and event.type in PERSONAL_FIELDS:
        value = _redacted(event)
    raw = _jsonb_safe(value.decode("utf-8", "replace")) if value is not None else None
    extra: dict[str, str] = {}
    if value is not None and len(value) <= 60_000:
        extra["original_b64"] = base64.b64encode(value).decode()
    if not isinstance(error, str):
        extra["trace"] = _jsonb_safe(_scrubbed("".join(traceback.format_exception(error)), personal)[-4000:])
    return new_typed_event(
        EventDeadLettered(
            consumer=consumer,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else None,
            error=message[:2000],
            original=raw[:60_000] if raw is not None else None,
            **extra,
        ),
        source=service,
        subject=event.subject if event else f"{record.topic}/{record.partition}/{record.offset}",
        causation=event,
        time=event.time if event else datetime.now(UTC),
    )


class ConsumerLoop:
    def __init__(
        self,
        *,
        service: str,
        subscription: Subscription,
        maker: async_sessionmaker[AsyncSession],
        bootstrap: str,
        on_commit: Callable[[], None] = lambda: None,
        batch_max: int = 500,
        group_id: str | None = None,
        namespace: str = "",
        session_timeout_ms: int = 10_000,
    ) -> None:
        self._namespace = namespace
        self._session_timeout_ms = session_timeout_ms
        self._max_batch_failures = 3
        self._rewind = False
        self._last_log_check = 0.0
        self.service = service
        self.sub = subscription
        self.consumer_name = f"{service}.{subscription.name}"
        self._maker = maker
        self._bootstrap = bootstrap
        self._on_commit = on_commit
        self._batch_max = batch_max
        self._group_id = group_id or f"{namespace}grantline-{self.consumer_name}"
        self._stopping = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    def rewind(self) -> None:
        """Read every assigned partition again from its start (the broker rebuilt its log)."""
        self._rewind = True

    async def lag(self) -> int:
        """Records between this consumer's positions and the partition ends it knows of."""
        consumer = self.consumer
        if consumer is None or not self.ready.is_set():
            return 0
        total = 0
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            try:
                position = await asyncio.wait_for(consumer.position(tp), timeout=0.5)
            except Exception:
                continue
            if end is not None:
                total += max(0, end - position)
        return total

    async def run(self) -> None:
        backoff = Backoff(first_seconds=0.5)
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                *(self._namespace + t for t in self.sub.topics),
                bootstrap_servers=self._bootstrap,
                group_id=self._group_id,
                client_id=self.consumer_name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._batch_max,
                # Tansu answers a fetch only when this wait expires, not when records arrive: every
                # hop would otherwise cost up to the 500 ms default.
                fetch_max_wait_ms=50,
                session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=max(100, self._session_timeout_ms // 10),
                rebalance_timeout_ms=self._session_timeout_ms,
            )
            self.consumer = consumer
            try:
                await consumer.start()
                self.ready.set()
                backoff.reset()
                await self._poll(consumer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s failed; restarting", self.consumer_name, exc_info=True)
                await backoff.sleep()
            finally:
                self.ready.clear()
                try:
                    await consumer.stop()
                except Exception:
                    log.debug("consumer stop failed", exc_info=True)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            if self._rewind:
                # Positions from before a broker restart may lie past the rebuilt log's end, where
                # the in-memory broker stays silent: start over; the inbox skips what was applied.
                self._rewind = False
                assigned = consumer.assignment()
                if assigned:
                    await consumer.seek_to_beginning(*assigned)
                log.warning("consumer %s rewound after broker amnesia", self.consumer_name)
            batches = await consumer.getmany(timeout_ms=200, max_records=self._batch_max)
            fetched = {tp: records for tp, records in batches.items() if records}
            if fetched:
                await self._process_with_retry(consumer, fetched)
            await self._restart_rebuilt_partitions(consumer, idle=set(consumer.assignment()) - set(batches))

    async def _restart_rebuilt_partitions(
        self, consumer: AIOKafkaConsumer, idle: set[TopicPartition]
    ) -> None:
        """A position past the partition's high watermark means the broker rebuilt the log (an
        in-memory broker restarted): read it again from the start; the inbox skips repeats."""
        now = asyncio.get_running_loop().time()
        if not idle or now - self._last_log_check < 1.0:
            return
        self._last_log_check = now
        for tp in idle:
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), timeout=0.5)
            except Exception:
                continue
            if position > high:
                log.warning(
                    "partition log is shorter than our position; reading it again from the start",
                    extra={
                        "consumer": self.consumer_name,
                        "partition": str(tp),
                        "position": position,
                        "high": high,
                    },
                )
                await consumer.seek_to_beginning(tp)

    async def _process_with_retry(
        self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> None:
        """Everything one fetch returned, all partitions in one transaction (each partition's
        records stay in order) and one offset commit: under light load a fetch brings a few
        records from each partition, and a transaction and a commit each would cost more than
        the records themselves."""
        records = [record for batch in fetched.values() for record in batch]
        backoff = Backoff()
        failures = 0
        while True:
            try:
                if failures >= self._max_batch_failures:
                    await self._dead_letter_all(records, "the batch failed repeatedly outside its handlers")
                else:
                    await self.process(records)
                break
            except Exception as exc:
                if self._stopping.is_set():
                    for tp, batch in fetched.items():
                        consumer.seek(tp, batch[0].offset)
                    raise
                if not is_transient(exc):
                    failures += 1
                    log.error("batch failed (%d); retrying", failures, exc_info=True)
                else:
                    log.warning("batch failed on infrastructure; retrying", exc_info=True)
                await backoff.sleep()
        await consumer.commit({tp: batch[-1].offset + 1 for tp, batch in fetched.items()})

    async def _dead_letter_all(self, records: Sequence[ConsumerRecord[Any, Any]], reason: str) -> None:
        """Last resort, bounded: park the whole batch (minimal rows) so the partition moves on."""
        dead = []
        for record in records:
            event = new_typed_event(
                EventDeadLettered(
                    consumer=self.consumer_name,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=reason,
                    original_b64=base64.b64encode(parked_bytes(record.value) or b"").decode()[:80_000],
                ),
                source=self.service,
                subject=f"{record.topic}/{record.partition}/{record.offset}",
            )
            dead.append((event, _key(record)))
        async with self._maker() as session, session.begin():
            await add_events(session, dead)
        self.stats.dead_lettered += len(dead)
        DLQ_TOTAL.labels(self.service, self.consumer_name).inc(len(dead))
        self._on_commit()

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply records in one transaction, in the order given (public for tests and replay)."""
        parsed: list[tuple[ConsumerRecord[Any, Any], Event]] = []
        dead: list[tuple[Event, str]] = []
        for record in records:
            try:
                event = parse_event(record.value)
            except PoisonEvent as exc:
                dead.append(
                    (dead_letter_event(self.service, self.consumer_name, record, exc, None), _key(record))
                )
                continue
            if self.sub.only_types is None or event.type in self.sub.only_types:
                parsed.append((record, event))
        by_id = {event.id: record for record, event in parsed}

        def dead_letter(event: Event, error: BaseException | str) -> None:
            record = by_id[event.id]
            dead.append(
                (dead_letter_event(self.service, self.consumer_name, record, error, event), _key(record))
            )

        async with self._maker() as session, session.begin():
            new_ids = await claim_new(session, self.consumer_name, [e.id for _, e in parsed])
            todo: list[Event] = []
            for _, event in parsed:
                if event.id in new_ids:
                    todo.append(event)
                    new_ids.discard(event.id)  # a duplicate inside one batch runs once
            if todo:
                await self.sub.handle(session, todo, dead_letter)
            if dead:
                await add_events(session, dead)
        self.stats.batches += 1
        self.stats.events += len(todo)
        self.stats.duplicates += len(parsed) - len(todo)
        self.stats.dead_lettered += len(dead)
        self.stats.last_batch_size = len(records)
        BATCH_SIZE.labels(self.service, self.consumer_name).observe(len(records))
        CONSUMED.labels(self.service, self.consumer_name, "applied").inc(len(todo))
        CONSUMED.labels(self.service, self.consumer_name, "duplicate").inc(len(parsed) - len(todo))
        if dead:
            DLQ_TOTAL.labels(self.service, self.consumer_name).inc(len(dead))
        self._on_commit()


def _jsonb_safe(text: str) -> str:
    # PostgreSQL's jsonb refuses NUL characters; the exact bytes travel in original_b64.
    return text.replace("\x00", "\ufffd")


def _key(record: ConsumerRecord[Any, Any]) -> str:
    if isinstance(record.key, bytes):
        return record.key.decode("utf-8", "replace")
    return f"{record.topic}/{record.partition}"
