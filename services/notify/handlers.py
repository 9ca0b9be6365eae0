"""What notify does with award events, and the public listing (I/O edge over domain.py).

The consumer only writes rows: a delivery per (event, partner) and, for approved awards (an
`auto` decision, or a review that approves), the announcement with its `announcement.published`
event. Sending is the dispatcher's job,
so a slow partner never holds up the consumer.

Each award event is first turned into an `AwardPlan` (pure; a malformed event fails there,
before anything is written), then plans are written set-based: one statement per table for a
whole batch. The per-event fallback writes a batch of one through the same code, so the two
paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain
from services.notify.domain import AwardPlan, Delivery, Position
from services.notify.notice.handlers import notice_end_at
from services.notify.repository import NotifyRepository, SqlNotifyRepository
from services.notify.transparency.domain import Change
from shared.contracts.envelope import Event
from shared.contracts.events import (
    CallOpened,
    PaymentFailed,
    PaymentOrdered,
    PaymentReturned,
    PaymentSent,
    PaymentSettled,
    PaymentStep,
    parse_data,
)
from shared.kernel.cursors import next_page, page_after
from shared.messaging.consumer import BatchHandler, DeadLetter


async def apply_plans(repo: NotifyRepository, plans: Sequence[AwardPlan]) -> list[Change]:
    """Write plans that `domain.in_order_runs` keeps together: at most four statements. Returns
    the announcement changes for the transparency log."""
    await repo.add_deliveries([p.delivery for p in plans])
    announcements = [p.announcement for p in plans if p.announcement is not None]
    stored = await repo.add_announcements(announcements)
    withdrawals = domain.first_revocations([p.delivery for p in plans if p.withdraws])
    await repo.withdraw_announcements(withdrawals)
    # Only a notice stored now is published: a re-driven decision must not announce twice.
    published = [a for a in announcements if a.decided_event_id in stored]
    await repo.add_events([(a.published, a.applicant_id) for a in published])
    # A revocation that found no notice (or one already down) logs nothing: the log reads the row.
    return [Change("published", a.application_id) for a in published] + [
        Change("withdrawn", app) for app in withdrawals
    ]


async def record_award_events(
    repo: NotifyRepository,
    events: Sequence[Event],
    dead_letter: DeadLetter,
    *,
    notice_period_seconds: int | None,
    now: datetime,
) -> None:
    """A partition's award events at once: malformed ones are dead-lettered before anything is
    written, the rest are written set-based in order-preserving runs (normally one). Notices
    published now end together: after `notice_period_seconds`, or by the working-day calendar
    when that is None."""
    notice_ends_at = notice_end_at(now, notice_period_seconds)
    plans: list[AwardPlan] = []
    for event in events:
        try:
            plan = domain.plan_award_event(event, notice_ends_at=notice_ends_at, now=now)
        except ValueError as exc:  # malformed: planning is pure, so nothing else raises it
            dead_letter(event, exc)
            continue
        if plan is not None:
            plans.append(plan)
    changes: list[Change] = []
    for run in domain.in_order_runs(plans):
        changes += await apply_plans(repo, run)
    # Last, in the same transaction: the log's lock is then held only while nothing else waits.
    await repo.log_changes(changes)


def make_award_batch_handler(notice_period_seconds: int | None) -> BatchHandler:
    async def handle_award_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
        await record_award_events(
            SqlNotifyRepository(session),
            events,
            dead_letter,
            notice_period_seconds=notice_period_seconds,
            now=datetime.now(UTC),
        )

    return handle_award_batch


# --- payment steps (grantline.payments): a signed webhook to the owning partner for each -------

PAYMENT_STEPS: dict[str, type[PaymentStep]] = {
    m.event_type: m for m in (PaymentOrdered, PaymentSent, PaymentSettled, PaymentFailed, PaymentReturned)
}
_MASK = "****"


def payment_delivery(event: Event) -> Delivery:
    """The partner's webhook for a payment step: the data as received, except that an account
    number not masked by the ledger is masked here (a webhook never carries one in full).
    ValueError (dead-lettered) for malformed data or a step without its partner."""
    model = PAYMENT_STEPS.get(event.type)
    if model is None:
        raise ValueError(f"{event.type}: not a payment step")
    step = parse_data(event, model)
    if step.partner_id is None:
        raise ValueError(f"{event.type}: data.partner_id: notify needs it (missing or null)")
    data = dict(event.data)
    account = step.masked_account
    if account is not None and not (account.startswith(_MASK) and len(account) <= len(_MASK) + 4):
        data["masked_account"] = _MASK + account[-4:] if len(account) > 4 else _MASK
    return domain.delivery_for(event.id, event.type, step.application_id, step.partner_id, data)


async def record_payment_events(repo: NotifyRepository, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """A batch of payment steps: a delivery per (event, partner), in one statement."""
    deliveries: list[Delivery] = []
    for event in events:
        try:
            deliveries.append(payment_delivery(event))
        except ValueError as exc:
            dead_letter(event, exc)
    await repo.add_deliveries(deliveries)


async def handle_payment_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    await record_payment_events(SqlNotifyRepository(session), events, dead_letter)


# --- calls (grantline.policy): the titles the 公示 page groups under ------------------------------

CALL_TYPES = frozenset({CallOpened.event_type})


async def record_call_opened(session: AsyncSession, event: Event) -> None:
    """The notify EventHandler for `call.opened` (through per_event): the call into the replica.
    Only the opening matters here: a closed call keeps its title, and its awards stay announced."""
    await SqlNotifyRepository(session).add_call(domain.call_title(event))


ANNOUNCEMENTS_CURSOR = "announcements:"  # the last announcement's position


async def list_announcements(
    repo: SqlNotifyRepository, *, year: int | None, program: str | None, status: str | None, cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the public view of the announcements on notice and final (公示), newest first,
    and the next page's cursor."""
    rows = await repo.list_announcements(
        year=year, program=program, status=status, after=page_after(cursor, ANNOUNCEMENTS_CURSOR, Position.parse),
        limit=limit + 1,
    )
    page, next_cursor = next_page(
        rows, limit, ANNOUNCEMENTS_CURSOR, lambda r: Position(r.published_at, r.application_id).key()
    )
    items = [
        domain.public_announcement(
            announcement_id=r.id,
            applicant_name=r.applicant_name,
            program=r.program,
            year=r.year,
            subject=r.subject,
            amount_fen=r.amount_fen,
            published_at=r.published_at,
            notice_ends_at=r.notice_ends_at,
            finalized_at=r.finalized_at,
            objections_open=r.objections_open,
        ) | {"log_index": r.log_index}
        for r in page
    ]
    return items, next_cursor
