"""What notify does with award events and when a notice period ends (I/O edge over domain.py).

The consumer only writes rows: a delivery per (event, partner) and, for awarded decisions,
the announcement with its `announcement.published` event. Sending is the dispatcher's job,
so a slow partner never holds up the consumer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain
from shared.envelope import Event, new_event
from shared.outbox import add_events

SOURCE = "grantline.notify"


def new_delivery_id() -> str:
    return "dlv_" + uuid.uuid4().hex


async def enqueue_delivery(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    event_type: str,
    application_id: str,
    partner_id: str,
    data: dict[str, Any],
) -> bool:
    """Insert the webhook delivery row (deduped by event id and partner); True when new."""
    body = domain.webhook_body(str(event_id), event_type, application_id, data)
    inserted = await session.scalar(
        text(
            "INSERT INTO deliveries (id, event_id, event_type, application_id, partner_id, body) "
            "VALUES (:id, :e, :t, :a, :p, :b) ON CONFLICT (event_id, partner_id) DO NOTHING RETURNING 1"
        ),
        {"id": new_delivery_id(), "e": event_id, "t": event_type, "a": application_id, "p": partner_id,
         "b": body.decode()},
    )
    return inserted is not None


def make_award_handler(notice_period_s: int):  # type: ignore[no-untyped-def]
    async def handle_award_event(session: AsyncSession, event: Event) -> None:
        try:
            if event.type == "award.decided":
                await apply_award_decided(session, event, notice_period_s=notice_period_s)
            elif event.type == "award.revoked":
                await apply_award_revoked(session, event)
        except (KeyError, TypeError) as exc:  # a field missing or of the wrong shape: dead-letter it
            raise ValueError(f"{event.type}: malformed data: {type(exc).__name__}: {exc}") from exc

    return handle_award_event


async def apply_award_decided(
    session: AsyncSession, event: Event, *, notice_period_s: int, now: datetime | None = None
) -> None:
    data = event.data
    application_id = str(data.get("application_id") or event.subject)
    partner_id = str(data["partner_id"])
    await enqueue_delivery(
        session, event_id=event.id, event_type=event.type, application_id=application_id,
        partner_id=partner_id, data=data,
    )
    if not domain.should_announce(data):
        return
    published_at = now or datetime.now(UTC)
    notice_ends_at = domain.notice_ends(published_at, notice_period_s)
    applicant = data.get("applicant") or {}
    published = new_event(
        "announcement.published",
        source=SOURCE,
        subject=application_id,
        data=domain.published_data(
            {**data, "application_id": application_id}, published_at=published_at, notice_ends_at=notice_ends_at
        ),
        causation=event,
        time=published_at,
    )
    stored = await session.scalar(
        text(
            "INSERT INTO announcements (application_id, decided_event_id, correlation_id, partner_id, "
            "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
            "published_event_id) VALUES (:a, :e, :c, :p, :ai, :an, :prog, :y, :s, :amt, :pub, :ends, :pe) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "a": application_id,
            "e": event.id,
            "c": event.correlation_id,
            "p": partner_id,
            "ai": str(applicant["id"]),
            "an": str(applicant.get("name", "")),
            "prog": str(data["program"]),
            "y": int(data["year"]),
            "s": str(data["subject"]),
            "amt": domain.awarded_fen(data),
            "pub": published_at,
            "ends": notice_ends_at,
            "pe": published.id,
        },
    )
    if stored is None:
        return  # already announced (a re-driven copy of the decision): the first notice stands
    await add_events(session, [(published, str(applicant["id"]))])


async def apply_award_revoked(session: AsyncSession, event: Event) -> None:
    data = event.data
    application_id = str(data.get("application_id") or event.subject)
    await enqueue_delivery(
        session, event_id=event.id, event_type=event.type, application_id=application_id,
        partner_id=str(data["partner_id"]), data=data,
    )
    # Withdrawn from the notice: the finaliser never touches it again. The row lock makes this
    # wait for a finaliser that holds it, so the two never both win.
    await session.execute(
        text(
            "UPDATE announcements SET withdrawn_at = now(), withdrawn_event_id = :e "
            "WHERE application_id = :a AND withdrawn_at IS NULL"
        ),
        {"a": application_id, "e": event.id},
    )


async def finalize_due(session: AsyncSession, *, limit: int = 100) -> list[Event]:
    """Finalise announcements whose notice has ended without a revocation, in the caller's
    transaction: the state change, the `award.finalized` outbox event and the webhook row
    commit together. SKIP LOCKED lets several instances share the work; the WHERE re-check
    makes each announcement final at most once."""
    rows = (
        await session.execute(
            text(
                "WITH due AS ("
                "  SELECT application_id FROM announcements"
                "  WHERE finalized_at IS NULL AND withdrawn_at IS NULL AND notice_ends_at <= now()"
                "  ORDER BY notice_ends_at LIMIT :n FOR UPDATE SKIP LOCKED) "
                "UPDATE announcements a SET finalized_at = now(), finalized_event_id = gen_random_uuid() "
                "FROM due WHERE a.application_id = due.application_id "
                "AND a.finalized_at IS NULL AND a.withdrawn_at IS NULL "
                "RETURNING a.application_id, a.partner_id, a.applicant_id, a.program, a.year, a.subject, "
                "a.amount_fen, a.finalized_at, a.finalized_event_id, a.decided_event_id, a.correlation_id"
            ),
            {"n": limit},
        )
    ).all()
    events: list[Event] = []
    for row in rows:
        finalized_at: datetime = row.finalized_at
        data = domain.finalized_data(
            application_id=row.application_id,
            partner_id=row.partner_id,
            program=row.program,
            year=row.year,
            subject=row.subject,
            amount_fen=row.amount_fen,
            finalized_at=finalized_at,
        )
        event = Event(
            id=row.finalized_event_id,
            type="award.finalized",
            source=SOURCE,
            time=finalized_at,
            subject=row.application_id,
            correlation_id=row.correlation_id,
            causation_id=str(row.decided_event_id),
            data=data,
        )
        await enqueue_delivery(
            session, event_id=event.id, event_type=event.type, application_id=row.application_id,
            partner_id=row.partner_id, data=data,
        )
        events.append(event)
        await add_events(session, [(event, row.applicant_id)])
    return events
