"""Transactional outbox: events are rows written in the caller's transaction; a relay
publishes them in order and marks them sent. Rows are kept: they are the event history."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.envelope import Event
from shared.records import OutboxRecord
from shared.topics import TOPIC_FOR_TYPE

log = logging.getLogger(__name__)


def outbox_row(event: Event, key: str, topic: str | None = None) -> dict[str, object]:
    return {
        "id": event.id,
        "topic": topic or TOPIC_FOR_TYPE[event.type],
        "key": key,
        "type": event.type,
        "subject": event.subject,
        "envelope": event.to_wire(),
    }


async def add_events(session: AsyncSession, events: Iterable[tuple[Event, str]]) -> int:
    """Write (event, kafka key) pairs into the outbox of the session's schema."""
    rows = [outbox_row(event, key) for event, key in events]
    if rows:
        await session.execute(insert(OutboxRecord), rows)
    return len(rows)


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
    ) -> None:
        self._namespace = namespace
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
                        "SELECT seq, topic, key, envelope FROM outbox WHERE published_at IS NULL "
                        "ORDER BY seq LIMIT :n"
                    ),
                    {"n": self._batch_max},
                )
            ).all()
            if not rows:
                return 0
            futures = [
                await self.producer.send(
                    self._namespace + row.topic, orjson.dumps(row.envelope), key=row.key.encode()
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await session.execute(
                text("UPDATE outbox SET published_at = now() WHERE seq = ANY(:seqs)"),
                {"seqs": [row.seq for row in rows]},
            )
        self.published += len(rows)
        return len(rows)

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                count = await self.drain_once()
                backoff = 0.2
                if count >= self._batch_max:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay failed; will retry", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            except TimeoutError:
                pass
