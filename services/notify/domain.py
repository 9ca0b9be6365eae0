"""Notify's pure logic: webhook bodies and signatures, which awards are announced (公示), what
each award event will write (its plan), and the public view of an announcement. No I/O, no
clock of its own. The webhook retry schedule is the dispatcher's (dispatcher/domain.py), the
finalisation rule the finaliser's (finaliser/domain.py), the notice period's working days
notice/domain.py's, objections objections/domain.py's."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import orjson

from shared.contracts.envelope import Event
from shared.contracts.events import (
    AnnouncementPublished,
    AwardDecided,
    AwardReviewed,
    AwardRevoked,
    CallOpened,
    new_typed_event,
    parse_data,
)
from shared.kernel.money import AmountError, format_fen, parse_amount

SOURCE = "grantline.notify"
T = TypeVar("T")

WEBHOOK_TYPES = frozenset({"award.decided", "award.reviewed", "award.revoked", "award.finalized", "objection.resolved"})
ANNOUNCED_STATUSES = frozenset({"approved", "partially_approved"})
SIGNATURE_HEADER = "Grantline-Signature"
EVENT_ID_HEADER = "Grantline-Event-Id"

_SIGNATURE = re.compile(r"^t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})$")


# --- webhooks -----------------------------------------------------------------------------


def webhook_body(event_id: str, event_type: str, application_id: str, data: dict[str, Any]) -> bytes:
    """The JSON POSTed to the partner: the event id lets the partner dedupe redeliveries."""
    return orjson.dumps({"id": event_id, "type": event_type, "application_id": application_id, "data": data})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<t>.<raw body>" with the partner's webhook secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`Grantline-Signature: t=<unix>,v1=<hex>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int, tolerance_seconds: int = 300) -> bool:
    """What a partner does with a delivery (and what the tests do): constant-time compare,
    and refuse stale timestamps so a captured request cannot be replayed later."""
    match = _SIGNATURE.match(header.strip())
    if match is None:
        return False
    timestamp = int(match["t"])
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(match["v1"], signature(secret, timestamp, body))


# --- 公示 ------------------------------------------------------------------------------------


def awarded_fen(awarded: str | None) -> int:
    """The awarded amount in fen; 0 when there is none (or it is not an amount)."""
    try:
        return parse_amount(awarded)
    except AmountError:
        return 0


def should_announce(status: str | None, awarded: str | None) -> bool:
    """Approved and partially approved awards with something awarded go on public notice: an
    `auto` award.decided at once, a reviewed one once award.reviewed approves it (an award
    pending review is decided with nothing awarded yet, so it is not announced)."""
    return status in ANNOUNCED_STATUSES and awarded_fen(awarded) > 0


def notice_ends(published_at: datetime, notice_period_seconds: int) -> datetime:
    return published_at + timedelta(seconds=notice_period_seconds)


def announcement_id_for(published_event_id: uuid.UUID) -> str:
    """An announcement's public id (`ann_…`): its `announcement.published` event's id, so the id is
    fixed with the event and the same in every copy of it."""
    return "ann_" + published_event_id.hex


def published_data(
    approved: AwardDecided | AwardReviewed, *, application_id: str, published_at: datetime, notice_ends_at: datetime,
    announcement_id: str | None = None,
) -> AnnouncementPublished:
    """`announcement.published` data for an approved award (decided at once, or reviewed)."""
    fields: dict[str, Any] = {} if announcement_id is None else {"announcement_id": announcement_id}
    return AnnouncementPublished(
        application_id=application_id,
        partner_id=approved.partner_id,
        program=approved.program,
        year=approved.year,
        applicant_name=approved.applicant.name if approved.applicant else None,
        subject=approved.subject,
        amount=format_fen(awarded_fen(approved.awarded)),
        published_at=published_at.isoformat(),
        notice_ends_at=notice_ends_at.isoformat(),
        **fields,
    )


def announcement_status(finalized_at: datetime | None) -> Literal["under_notice", "final"]:
    return "final" if finalized_at is not None else "under_notice"


def public_announcement(
    *,
    announcement_id: str,
    applicant_name: str,
    program: str,
    year: int,
    subject: str,
    amount_fen: int,
    published_at: datetime,
    notice_ends_at: datetime,
    finalized_at: datetime | None,
    objections_open: int,
) -> dict[str, Any]:
    """What the public may see: the announcement's own id (objections name it), no internal ids,
    no partner, no contact data, and of objections only how many are open."""
    return {
        "id": announcement_id,
        "applicant_name": applicant_name,
        "program": program,
        "year": year,
        "subject": subject,
        "amount": format_fen(amount_fen),
        "published_at": published_at.isoformat(),
        "notice_ends_at": notice_ends_at.isoformat(),
        "finalized_at": finalized_at.isoformat() if finalized_at else None,
        "status": announcement_status(finalized_at),
        "objections_open": objections_open,
    }


# --- lists -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A row's place in a newest-first list (announcements, deliveries): its time, then its id
    for rows of the same time. A page's cursor is the last row's position."""

    at: datetime
    id: str

    def key(self) -> str:
        return f"{self.at.isoformat()}/{self.id}"

    @classmethod
    def parse(cls, key: str) -> Position:
        """ValueError for a key `key()` did not write."""
        at, slash, id_ = key.partition("/")  # an ISO time has no slash
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            when = None
        if not slash or not id_ or when is None or when.tzinfo is None:
            raise ValueError("not a cursor returned by this API")
        return cls(when, id_)


# --- plans: what an award event will write --------------------------------------------------

_INT4 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class Delivery:
    """A webhook to send: one per (event, partner)."""

    event_id: uuid.UUID
    event_type: str
    application_id: str
    partner_id: str
    body: str


@dataclass(frozen=True)
class Announcement:
    id: str  # ann_…: the published event's id (announcement_id_for)
    application_id: str
    decided_event_id: uuid.UUID  # the event that approved the award: award.decided, or award.reviewed
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
    call_id: str | None = None  # the call (申报批次) the award names; None in events from before calls


@dataclass(frozen=True)
class AwardPlan:
    delivery: Delivery
    announcement: Announcement | None = None
    withdraws: bool = False  # award.revoked: take the application's notice down


def delivery_for(event_id: uuid.UUID, event_type: str, application_id: str, partner_id: str,
                 data: dict[str, Any]) -> Delivery:
    body = webhook_body(str(event_id), event_type, application_id, data).decode()
    return Delivery(event_id, event_type, application_id, partner_id, body)


def plan_award_event(event: Event, *, notice_ends_at: datetime, now: datetime) -> AwardPlan | None:
    """Everything `event` will write (None: not ours to handle). Data lacking a field notify
    needs, or with one of the wrong shape, raises ValueError naming it (the consumer
    dead-letters the event), before any write. The webhook forwards the data as received.
    An announcement published now ends its notice at `notice_ends_at`."""
    if event.type == "award.decided":
        decided = parse_data(event, AwardDecided)
        return _plan_approval(event, decided, decided.application_id or event.subject, notice_ends_at, now)
    if event.type == "award.reviewed":
        reviewed = parse_data(event, AwardReviewed)
        return _plan_approval(event, reviewed, reviewed.application_id, notice_ends_at, now)
    if event.type == "award.revoked":
        revoked = parse_data(event, AwardRevoked)
        delivery = delivery_for(event.id, event.type, revoked.application_id or event.subject,
                                _needed(event, "partner_id", revoked.partner_id), event.data)
        return AwardPlan(delivery, withdraws=True)
    return None


def _needed(event: Event, field: str, value: T | None) -> T:
    """A field the contract lets a publisher leave out, but without which notify cannot act."""
    if value is None:
        raise ValueError(f"{event.type}: data.{field}: notify needs it (missing or null)")
    return value


def _plan_approval(
    event: Event, approval: AwardDecided | AwardReviewed, application_id: str, notice_ends_at: datetime,
    now: datetime,
) -> AwardPlan:
    """A decision or a review: the partner's webhook, and the notice when it approves something
    (a rejected review has status rejected and nothing awarded, so the one rule covers both)."""
    partner_id = _needed(event, "partner_id", approval.partner_id)
    delivery = delivery_for(event.id, event.type, application_id, partner_id, event.data)
    if not should_announce(approval.status, approval.awarded):
        return AwardPlan(delivery)
    applicant = _needed(event, "applicant", approval.applicant)
    program = _needed(event, "program", approval.program)
    year = _needed(event, "year", approval.year)
    subject = _needed(event, "subject", approval.subject)
    if year not in _INT4:
        raise ValueError(f"{event.type}: data.year: {year} is out of range")
    published_id = uuid.uuid4()
    announcement_id = announcement_id_for(published_id)
    published = new_typed_event(
        published_data(approval, application_id=application_id, published_at=now, notice_ends_at=notice_ends_at,
                       announcement_id=announcement_id),
        source=SOURCE,
        subject=application_id,
        causation=event,
        time=now,
        event_id=published_id,
    )
    announcement = Announcement(
        id=announcement_id,
        application_id=application_id,
        decided_event_id=event.id,
        correlation_id=event.correlation_id,
        partner_id=partner_id,
        applicant_id=applicant.id,
        applicant_name=applicant.name or "",
        program=program,
        year=year,
        subject=subject,
        amount_fen=awarded_fen(approval.awarded),
        published_at=now,
        notice_ends_at=notice_ends_at,
        published=published,
        call_id=approval.call_id,
    )
    return AwardPlan(delivery, announcement)


@dataclass(frozen=True)
class CallTitle:
    """A call (申报批次) as the 公示 page names its group: from grantline.policy `call.opened`."""

    id: str
    program: str
    year: int
    title: str
    opened_at: datetime


def call_title(event: Event) -> CallTitle:
    """The replica's row for a `call.opened`; ValueError (dead-lettered) for malformed data."""
    opened = parse_data(event, CallOpened)
    if opened.year not in _INT4:
        raise ValueError(f"{event.type}: data.year: {opened.year} is out of range")
    return CallTitle(opened.id, opened.program, opened.year, opened.title.strip(),
                     datetime.fromisoformat(opened.opened_at))


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


def first_revocations(revocations: Sequence[Delivery]) -> dict[str, uuid.UUID]:
    """Per application, the revocation that takes its notice down: the first one."""
    first: dict[str, uuid.UUID] = {}
    for r in revocations:
        first.setdefault(r.application_id, r.event_id)
    return first
