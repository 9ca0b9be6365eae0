"""Dead letters, for operators: every service lists the events its consumers parked
(`event.dead_lettered` rows in its own outbox) and re-drives one, once, with who and why.

A re-drive is one transaction: the `redrives` row (its primary key makes a second re-drive of
the same dead letter a conflict), the consumer's inbox row for the original event deleted (so
the consumer applies the copy), and the original envelope put back on its original topic
through the outbox. The topic's other consumer groups applied it already: their inboxes skip it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.envelope import Event, PoisonEvent, parse_event
from shared.kernel.cursors import next_page
from shared.kernel.errors import Conflict, NotFound
from shared.messaging.outbox import outbox_row, write_outbox_rows

DEAD_LETTERED = "event.dead_lettered"
CURSOR_TAG = "d"  # the dead-letters list


class NotRedrivable(ValueError):
    """The dead letter holds nothing that could be applied: re-driving would only park it again."""


# -- pure helpers ---------------------------------------------------------------------------------


def original_bytes(data: dict[str, Any]) -> bytes | None:
    """The parked message's exact bytes (`original_b64`), else its text (`original`, lossy)."""
    encoded = data.get("original_b64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
    original = data.get("original")
    return original.encode() if isinstance(original, str) else None


def original_event(data: dict[str, Any]) -> Event | None:
    raw = original_bytes(data)
    if raw is None:
        return None
    try:
        return parse_event(raw)
    except PoisonEvent:
        return None


def _has_nul(value: Any) -> bool:
    """Any NUL in a decoded JSON value (PostgreSQL's jsonb refuses them); iterative, so any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass(frozen=True)
class RedrivePlan:
    consumer: str
    event: Event
    envelope: str  # the original envelope's JSON text, as it was consumed
    topic: str  # without the deployment's topic namespace: the relay adds it
    key: str


def plan_redrive(data: dict[str, Any], row_key: str, namespace: str) -> RedrivePlan:
    """What re-driving this dead letter's data means, or NotRedrivable saying why not."""
    consumer, topic = data.get("consumer"), data.get("topic")
    if not isinstance(consumer, str) or not isinstance(topic, str):
        raise NotRedrivable("the dead letter does not name its consumer and topic")
    if not topic.startswith(namespace) or len(topic) == len(namespace):
        raise NotRedrivable(f"topic {topic!r} is not one of this deployment's")
    raw = original_bytes(data)
    if raw is None:
        raise NotRedrivable("the dead letter does not hold the original message's bytes")
    try:
        envelope = raw.decode("utf-8")
        decoded = orjson.loads(raw)
        event = parse_event(raw)
    except (UnicodeDecodeError, orjson.JSONDecodeError, PoisonEvent) as exc:
        raise NotRedrivable(
            f"the original message is not a Grantline event envelope ({exc}); "
            "re-driving would only park it again"
        ) from exc
    if _has_nul(decoded):
        raise NotRedrivable("the original envelope holds NUL characters, which the outbox cannot store")
    key = data.get("key")
    return RedrivePlan(
        consumer, event, envelope, topic[len(namespace) :], key if isinstance(key, str) else row_key
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def dead_letter_view(row: Any) -> dict[str, Any]:
    data = orjson.loads(row.envelope).get("data") or {}
    event = original_event(data)
    return {
        "id": str(row.id),
        "consumer": data.get("consumer"),
        "topic": data.get("topic"),
        "partition": data.get("partition"),
        "offset": data.get("offset"),
        "key": data.get("key"),
        "error": data.get("error"),
        "original_event_id": str(event.id) if event else None,
        "original_event_type": event.type if event else None,
        "dead_lettered_at": _iso(row.created_at),
        "redrive": None
        if row.redriven_by is None
        else {
            "by": row.redriven_by,
            # The name of a staff member (from this service's directory; staff rows are never
            # deleted and names never change); null for the bootstrap identities.
            "by_name": row.redriven_by_name,
            "reason": row.reason,
            "at": _iso(row.redriven_at),
            "event_id": str(row.redrive_event_id),
        },
    }


# -- the database edge ----------------------------------------------------------------------------

_SELECT = (
    "SELECT o.seq, o.id, o.key, o.envelope::text AS envelope, o.created_at, "
    "r.redriven_by, st.name AS redriven_by_name, r.reason, r.redriven_at, r.event_id AS redrive_event_id "
    "FROM outbox o LEFT JOIN redrives r ON r.dead_letter_id = o.id LEFT JOIN staff st ON st.id = r.redriven_by "
    f"WHERE o.type = '{DEAD_LETTERED}'"
)


async def list_dead_letters(
    session: AsyncSession, *, consumer: str | None, before: int | None, limit: int
) -> dict[str, Any]:
    where: list[str] = [_SELECT]
    params: dict[str, Any] = {"lim": limit + 1}
    if consumer:
        where.append("o.envelope->'data'->>'consumer' = :consumer")
        params["consumer"] = consumer
    if before is not None:
        where.append("o.seq < :before")
        params["before"] = before
    rows = (
        await session.execute(text(" AND ".join(where) + " ORDER BY o.seq DESC LIMIT :lim"), params)
    ).all()
    page, next_cursor = next_page(rows, limit, CURSOR_TAG, lambda r: r.seq)
    return {"items": [dead_letter_view(r) for r in page], "next_cursor": next_cursor}


async def get_dead_letter(session: AsyncSession, dead_letter_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(text(_SELECT + " AND o.id = :id"), {"id": dead_letter_id})).first()
    return dead_letter_view(row) if row else None


async def redrive_dead_letter(
    session: AsyncSession, dead_letter_id: uuid.UUID, *, who: str, reason: str, namespace: str
) -> None:
    """Inside the caller's transaction; NotFound or Conflict when it cannot be done."""
    row = (
        await session.execute(
            text(
                "SELECT key, envelope::text AS envelope FROM outbox "
                f"WHERE id = :id AND type = '{DEAD_LETTERED}'"
            ),
            {"id": dead_letter_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    try:
        plan = plan_redrive(orjson.loads(row.envelope).get("data") or {}, row.key, namespace)
    except NotRedrivable as exc:
        raise Conflict(f"dead letter {dead_letter_id} cannot be re-driven: {exc}") from exc
    # The primary key decides between two operators re-driving at once: the second waits,
    # then conflicts.
    recorded = await session.scalar(
        text(
            "INSERT INTO redrives "
            "(dead_letter_id, consumer, original_event_id, redriven_by, reason, event_id) "
            "VALUES (:id, :consumer, :original, :who, :reason, :original) "
            "ON CONFLICT (dead_letter_id) DO NOTHING RETURNING dead_letter_id"
        ),
        {
            "id": dead_letter_id,
            "consumer": plan.consumer,
            "original": plan.event.id,
            "who": who,
            "reason": reason,
        },
    )
    if recorded is None:
        earlier = (
            await session.execute(
                text("SELECT redriven_by, redriven_at FROM redrives WHERE dead_letter_id = :id"),
                {"id": dead_letter_id},
            )
        ).one()
        raise Conflict(
            f"dead letter {dead_letter_id} was re-driven already, "
            f"by {earlier.redriven_by} at {_iso(earlier.redriven_at)}"
        )
    await session.execute(
        text("DELETE FROM inbox WHERE consumer = :consumer AND event_id = :original"),
        {"consumer": plan.consumer, "original": plan.event.id},
    )
    await _republish(session, plan, dead_letter_id)


async def _republish(session: AsyncSession, plan: RedrivePlan, dead_letter_id: uuid.UUID) -> None:
    row = outbox_row(plan.event, plan.key, plan.topic, envelope=plan.envelope)
    if await write_outbox_rows(session, [row], skip_taken=True):
        return
    # The id is taken. A copy put back by an earlier re-drive (the event failed again after it) is
    # sent once more: the outbox lets only published_at change. Anything else is a real collision.
    earlier_copy = await session.scalar(
        text(
            "SELECT 1 FROM redrives WHERE event_id = :original AND dead_letter_id <> :id "
            "AND EXISTS (SELECT 1 FROM outbox WHERE id = :original AND topic = :topic)"
        ),
        {"original": plan.event.id, "id": dead_letter_id, "topic": plan.topic},
    )
    if earlier_copy is None:
        raise Conflict(f"event {plan.event.id} is already in this service's outbox; it cannot be put back")
    await session.execute(
        text("UPDATE outbox SET published_at = NULL WHERE id = :original"), {"original": plan.event.id}
    )
