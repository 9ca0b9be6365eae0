"""Inbox dedupe: a consumer records each event id it handled in the same transaction as
the effect, so a redelivered event is recognised and skipped."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def claim_new(session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Insert inbox rows for these ids; return the ones not seen before by this consumer.

    A concurrent claimer of the same id (two instances during a rebalance) blocks on the
    primary key until the first commits, then sees a conflict: only one applies the effect.
    """
    if not event_ids:
        return set()
    result = await session.execute(
        text(
            "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(CAST(:ids AS uuid[])) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"consumer": consumer, "ids": [str(i) for i in dict.fromkeys(event_ids)]},
    )
    return {row[0] for row in result}
