"""A handler with a visible effect, for exercising the consumer plumbing: each event it applies
is a row in an `effects` table that has no unique key, so an effect applied twice shows as two
rows. The crash test's subprocess runs it too."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event

CREATE_EFFECTS = "CREATE TABLE IF NOT EXISTS effects (event_id uuid NOT NULL, note text, at timestamptz DEFAULT now())"


async def record_effect(session: AsyncSession, event: Event) -> None:
    if event.data.get("explode"):
        raise RuntimeError("this event always fails")
    await session.execute(
        text("INSERT INTO effects (event_id, note) VALUES (:e, :n)"),
        {"e": event.id, "n": event.data.get("note")},
    )


async def effects_for(
    maker: async_sessionmaker[AsyncSession], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """event id → how many times its effect was applied (absent: never)."""
    async with maker() as session:
        rows = await session.execute(
            text("SELECT event_id, count(*) FROM effects WHERE event_id = ANY(:ids) GROUP BY event_id"),
            {"ids": list(ids)},
        )
        return {r[0]: r[1] for r in rows}
