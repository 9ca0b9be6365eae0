"""What notify does with award events and when a notice period ends (I/O edge over domain.py).

The consumer only writes rows: a delivery per (event, partner) and, for awarded decisions,
the announcement with its `announcement.published` event. Sending is the dispatcher's job,
so a slow partner never holds up the consumer.

Each award event is first turned into an `AwardPlan` (pure; a malformed event fails here,
before anything is written), then plans are written set-based: one statement per table for a
whole batch. The per-event fallback writes a batch of one through the same code, so the two
paths cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain
from shared.contracts.envelope import Event, new_event
from shared.messaging.consumer import BatchHandler, DeadLetter
from shared.messaging.outbox import add_events

SOURCE = "grantline.notify"
_INT4 = range(-(2**31), 2**31)


def new_delivery_id() -> str:
    return "dlv_" + uuid.uuid4().hex


# --- plans: what an event will write (pure) -------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event_id: uuid.UUID
    event_type: str
    application_id: str
    partner_id: str
    body: str


@dataclass(frozen=True)
class Announcement:
    application_id: str
    decided_event_id: uuid.UUID
    correlation_id: str
    partner_id: str
    applicant_id: str
    applicant_name: str
    program: str
    year: int
    subject: str
    amount_fen: int
    published_at: datetime
    notice_ends_at: datetime
    published: Event  # written to the outbox only if this announcement is the one stored


@dataclass(frozen=True)
class AwardPlan:
    delivery: Delivery
    announcement: Announcement | None = None
    withdraws: bool = False  # award.revoked: take the application's notice down


def delivery_for(event_id: uuid.UUID, event_type: str, application_id: str, partner_id: str,
                 data: dict[str, Any]) -> Delivery:
    body = domain.webhook_body(str(event_id), event_type, application_id, data).decode()
    return Delivery(event_id, event_type, application_id, partner_id, body)


def plan_award_event(event: Event, *, notice_period_s: int, now: datetime) -> AwardPlan | None:
    """Everything `event` will write (None: not ours to handle). Data lacking a field or with
    one of the wrong shape raises ValueError (the dead letter names it so), before any write."""
    try:
        if event.type == "award.decided":
            return _plan_decided(event, notice_period_s=notice_period_s, now=now)
        if event.type == "award.revoked":
            return _plan_revoked(event)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{event.type}: malformed data: {type(exc).__name__}: {exc}") from exc
    return None


def _application_id(event: Event) -> str:
    return str(event.data.get("application_id") or event.subject)


def _plan_decided(event: Event, *, notice_period_s: int, now: datetime) -> AwardPlan:
    data = event.data
    application_id = _application_id(event)
    partner_id = str(data["partner_id"])
    delivery = delivery_for(event.id, event.type, application_id, partner_id, data)
    if not domain.should_announce(data):
        return AwardPlan(delivery)
    applicant = data.get("applicant") or {}
    if not isinstance(applicant, dict):
        raise TypeError(f"applicant is a {type(applicant).__name__}, not an object")
    year = int(data["year"])
    if year not in _INT4:
        raise ValueError(f"year {year} is out of range")
    notice_ends_at = domain.notice_ends(now, notice_period_s)
    published = new_event(
        "announcement.published",
        source=SOURCE,
        subject=application_id,
        data=domain.published_data(
            {**data, "application_id": application_id}, published_at=now, notice_ends_at=notice_ends_at
        ),
        causation=event,
        time=now,
    )
    announcement = Announcement(
        application_id=application_id,
        decided_event_id=event.id,
        correlation_id=event.correlation_id,
        partner_id=partner_id,
        applicant_id=str(applicant["id"]),
        applicant_name=str(applicant.get("name", "")),
        program=str(data["program"]),
        year=year,
        subject=str(data["subject"]),
        amount_fen=domain.awarded_fen(data),
        published_at=now,
        notice_ends_at=notice_ends_at,
        published=published,
    )
    return AwardPlan(delivery, announcement)


def _plan_revoked(event: Event) -> AwardPlan:
    data = event.data
    application_id = _application_id(event)
    delivery = delivery_for(event.id, event.type, application_id, str(data["partner_id"]), data)
    return AwardPlan(delivery, withdraws=True)


def in_order_runs(plans: Sequence[AwardPlan]) -> list[list[AwardPlan]]:
    """Split plans where set-based writing would reorder them: within a run, announcements are
    inserted before withdrawals are applied, so a decision that follows a revocation of the same
    application starts a new run (rare: a re-driven decision after its revocation)."""
    runs: list[list[AwardPlan]] = [[]]
    withdrawn: set[str] = set()
    for plan in plans:
        app = plan.delivery.application_id
        if plan.announcement is not None and app in withdrawn:
            runs.append([])
            withdrawn = set()
        runs[-1].append(plan)
        if plan.withdraws:
            withdrawn.add(app)
    return [run for run in runs if run]


# --- writing plans (a constant number of statements per run) --------------------------------


_INSERT_DELIVERIES = text(
    "INSERT INTO deliveries (id, event_id, event_type, application_id, partner_id, body) "
    "SELECT i, e, t, a, p, b FROM unnest(CAST(:ids AS text[]), CAST(:events AS uuid[]), "
    "CAST(:types AS text[]), CAST(:apps AS text[]), CAST(:partners AS text[]), CAST(:bodies AS text[])) "
    "WITH ORDINALITY AS u(i, e, t, a, p, b, n) ORDER BY n "
    "ON CONFLICT (event_id, partner_id) DO NOTHING"
)

# RETURNING says which announcements were stored: a re-driven copy of a decision (or a second
# decision for the same application) conflicts, and the first notice stands.
_INSERT_ANNOUNCEMENTS = text(
    "INSERT INTO announcements (application_id, decided_event_id, correlation_id, partner_id, "
    "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
    "published_event_id) "
    "SELECT a, e, c, p, ai, an, prog, y, s, amt, pub, ends, pe FROM unnest("
    "CAST(:apps AS text[]), CAST(:events AS uuid[]), CAST(:corrs AS text[]), CAST(:partners AS text[]), "
    "CAST(:applicants AS text[]), CAST(:names AS text[]), CAST(:programs AS text[]), CAST(:years AS int[]), "
    "CAST(:subjects AS text[]), CAST(:amounts AS bigint[]), CAST(:pubs AS timestamptz[]), "
    "CAST(:ends AS timestamptz[]), CAST(:published AS uuid[])) "
    "WITH ORDINALITY AS u(a, e, c, p, ai, an, prog, y, s, amt, pub, ends, pe, n) ORDER BY n "
    "ON CONFLICT DO NOTHING RETURNING decided_event_id"
)

# Withdrawn from the notice: the finaliser never touches it again. The row lock makes this wait
# for a finaliser that holds it, so the two never both win.
_WITHDRAW = text(
    "UPDATE announcements a SET withdrawn_at = now(), withdrawn_event_id = u.e "
    "FROM unnest(CAST(:apps AS text[]), CAST(:events AS uuid[])) AS u(a, e) "
    "WHERE a.application_id = u.a AND a.withdrawn_at IS NULL"
)


async def enqueue_deliveries(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    """Insert webhook delivery rows, deduped by (event id, partner), in one statement."""
    if not deliveries:
        return
    await session.execute(
        _INSERT_DELIVERIES,
        {
            "ids": [new_delivery_id() for _ in deliveries],
            "events": [str(d.event_id) for d in deliveries],
            "types": [d.event_type for d in deliveries],
            "apps": [d.application_id for d in deliveries],
            "partners": [d.partner_id for d in deliveries],
            "bodies": [d.body for d in deliveries],
        },
    )


async def enqueue_delivery(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    event_type: str,
    application_id: str,
    partner_id: str,
    data: dict[str, Any],
) -> None:
    """One webhook delivery row (deduped by event id and partner)."""
    await enqueue_deliveries(session, [delivery_for(event_id, event_type, application_id, partner_id, data)])


async def store_announcements(session: AsyncSession, announcements: Sequence[Announcement]) -> set[uuid.UUID]:
    """Insert announcements; the decided event ids of those actually stored."""
    if not announcements:
        return set()
    rows = await session.execute(
        _INSERT_ANNOUNCEMENTS,
        {
            "apps": [a.application_id for a in announcements],
            "events": [str(a.decided_event_id) for a in announcements],
            "corrs": [a.correlation_id for a in announcements],
            "partners": [a.partner_id for a in announcements],
            "applicants": [a.applicant_id for a in announcements],
            "names": [a.applicant_name for a in announcements],
            "programs": [a.program for a in announcements],
            "years": [a.year for a in announcements],
            "subjects": [a.subject for a in announcements],
            "amounts": [a.amount_fen for a in announcements],
            "pubs": [a.published_at for a in announcements],
            "ends": [a.notice_ends_at for a in announcements],
            "published": [str(a.published.id) for a in announcements],
        },
    )
    return {row[0] for row in rows}


async def withdraw_announcements(session: AsyncSession, revocations: Sequence[Delivery]) -> None:
    """Take notices down; the first revocation of an application is the one recorded."""
    first: dict[str, uuid.UUID] = {}
    for r in revocations:
        first.setdefault(r.application_id, r.event_id)
    if first:
        await session.execute(
            _WITHDRAW, {"apps": list(first), "events": [str(e) for e in first.values()]}
        )


async def apply_plans(session: AsyncSession, plans: Sequence[AwardPlan]) -> None:
    """Write plans that `in_order_runs` keeps together: at most four statements."""
    await enqueue_deliveries(session, [p.delivery for p in plans])
    announcements = [p.announcement for p in plans if p.announcement is not None]
    stored = await store_announcements(session, announcements)
    await withdraw_announcements(session, [p.delivery for p in plans if p.withdraws])
    # Only a notice stored now is published: a re-driven decision must not announce twice.
    await add_events(
        session,
        [(a.published, a.applicant_id) for a in announcements if a.decided_event_id in stored],
    )


# --- consumer handlers ------------------------------------------------------------------------


def make_award_batch_handler(notice_period_s: int) -> BatchHandler:
    """A partition's award events at once: malformed ones are dead-lettered before anything
    is written, the rest are written set-based in order-preserving runs (normally one)."""

    async def handle_award_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
        now = datetime.now(UTC)
        plans: list[AwardPlan] = []
        for event in events:
            try:
                plan = plan_award_event(event, notice_period_s=notice_period_s, now=now)
            except ValueError as exc:  # malformed: planning is pure, so nothing else raises it
                dead_letter(event, exc)
                continue
            if plan is not None:
                plans.append(plan)
        for run in in_order_runs(plans):
            await apply_plans(session, run)

    return handle_award_batch


# --- the finaliser ----------------------------------------------------------------------------


async def finalize_due(session: AsyncSession, *, limit: int = 100) -> list[Event]:
    """Finalise announcements whose notice has ended without a revocation, in the caller's
    transaction: the state change, the `award.finalized` outbox events and the webhook rows
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
    events: list[tuple[Event, str]] = []
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
        events.append((event, row.applicant_id))
    await enqueue_deliveries(
        session,
        [delivery_for(e.id, e.type, e.subject, str(e.data["partner_id"]), e.data) for e, _ in events],
    )
    await add_events(session, events)
    return [e for e, _ in events]
