"""Intake's pure logic: the status projection over downstream events, the partner's view of an
application (its payee masked but to payment officers), request hashes."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.intake.payees.domain import is_masked, mask_account, masked
from shared.contracts.envelope import Event
from shared.contracts.events import (
    AnnouncementPublished,
    ApplicationAssessed,
    AwardDecided,
    AwardFinalized,
    AwardReviewed,
    AwardRevoked,
    EventData,
    ObjectionFiled,
    ObjectionResolved,
    PayeeUpdated,
    PaymentFailed,
    PaymentOrdered,
    PaymentReturned,
    PaymentSent,
    PaymentSettled,
    PaymentStep,
    Reason,
)

SOURCE = "grantline.intake"  # the source of intake's events

# What the status projection shows: the downstream events about an application.
Downstream = (
    ApplicationAssessed
    | AwardDecided
    | AwardReviewed
    | AwardRevoked
    | AnnouncementPublished
    | ObjectionFiled
    | ObjectionResolved
    | AwardFinalized
    | PaymentStep
)
# grantline.payments: the application's `payment` block follows each step of its order.
PAYMENT_STEPS: tuple[type[PaymentStep], ...] = (
    PaymentOrdered, PaymentSent, PaymentSettled, PaymentFailed, PaymentReturned,
)
_SHOWN: tuple[type[Downstream], ...] = (
    ApplicationAssessed,
    AwardDecided,
    AwardReviewed,
    AwardRevoked,
    AnnouncementPublished,
    ObjectionFiled,
    ObjectionResolved,
    AwardFinalized,
    *PAYMENT_STEPS,
)
DOWNSTREAM: dict[str, type[Downstream]] = {model.event_type: model for model in _SHOWN}
_PAYMENT_TYPES = frozenset(model.event_type for model in PAYMENT_STEPS)
# intake's own events that carry a full account number (shown masked but to payment officers).
_WITH_PAYEE = frozenset({"application.received", PayeeUpdated.event_type})

# A status only moves forward: events from different topics may be consumed out of order, and a
# late award.decided (pending_review) must not undo its review. Stored in applications.status_rank
# (migration 0007 renumbered the rows from before pending_review).
STATUS_RANK = {
    "received": 0,
    "ineligible": 1,
    "pending_review": 2,
    "approved": 3,
    "partially_approved": 3,
    "rejected": 3,
    "revoked": 4,
}
FINAL_STATUSES = frozenset({"ineligible", "approved", "partially_approved", "rejected", "revoked"})

OPEN = "open"  # an objection's state until it is resolved (then its outcome: upheld or dismissed)
# What intake keeps of objection.filed in its timeline: never the objector's name, organisation,
# contact or statement (CONTRACT.md: those are never published; only notify keeps them).
_OBJECTION_KEPT = ("objection_id", "announcement_id", "application_id", "filed_at")


@dataclass
class ApplicationState:
    status: str
    status_rank: int
    decision: dict[str, Any] | None
    announcement: dict[str, Any] | None = field(default=None)
    # objection id -> "open", "upheld" or "dismissed": ids only, so the count of open ones holds
    # whatever order filed and resolved arrive in (a resolution seen first is not reopened).
    objections: dict[str, str] = field(default_factory=dict)
    # The `payment` block: the latest step of the application's payment order (None before one).
    payment: dict[str, Any] | None = field(default=None)


def _reasons(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [reason.to_data() for reason in reasons]


def _decision_from_assessment(data: ApplicationAssessed) -> dict[str, Any]:
    return {
        "entitlement": data.entitlement if data.entitlement is not None else "0.00",
        "held": "0.00",
        "awarded": "0.00",
        "limited_by": None,
        "reasons": _reasons(data.reasons),
        "review": None,
    }


def _decision_from_award(data: AwardDecided) -> dict[str, Any]:
    awarded = data.awarded if data.awarded is not None else "0.00"
    return {
        "entitlement": data.entitlement if data.entitlement is not None else "0.00",
        # What the pools allowed: held for review, or (decided at once) what was awarded.
        "held": data.held if data.held is not None else awarded,
        "awarded": awarded,
        "limited_by": data.limited_by,
        "reasons": _reasons(data.reasons),
        "review": None,  # null until a reviewer decides (and for ever under review "auto")
    }


def _decision_from_review(prior: dict[str, Any] | None, data: AwardReviewed) -> dict[str, Any]:
    before = prior or {}
    # The ledger sends the award's reasons as they stand after review (a cap partly used, then
    # REVIEW_REDUCED or REVIEW_REJECTED); an event without any keeps the decision's.
    reasons = _reasons(data.reasons) if data.reasons else list(before.get("reasons", []))
    return {
        "entitlement": before.get("entitlement", "0.00"),
        "held": data.held,
        "awarded": data.awarded,
        "limited_by": data.limited_by if "limited_by" in data.model_fields_set else before.get("limited_by"),
        "reasons": reasons,
        "review": {
            "decision": data.decision,
            "amount": data.awarded,
            "by": data.reviewed_by.to_data(),
            "reason": data.reason,
            "at": data.reviewed_at,
        },
    }


def _as_sent(data: EventData, field_name: str, absent: str) -> str | None:
    """The field as sent (a null included); `absent` when the event left it out."""
    return getattr(data, field_name) if field_name in data.model_fields_set else absent


def _announcement(before: dict[str, Any] | None, objections: dict[str, str], **changes: Any) -> dict[str, Any]:
    """The announcement block with `changes`, its open objections counted from `objections`."""
    out: dict[str, Any] = {
        "id": None, "published_at": None, "notice_ends_at": None, "objections_open": 0, "finalized_at": None,
    }
    out.update(before or {})
    out.update(changes)
    out["objections_open"] = sum(1 for state in objections.values() if state == OPEN)
    return out


def _payment(before: dict[str, Any] | None, step: PaymentStep) -> dict[str, Any] | None:
    """The `payment` block after `step`; a step older than the one shown changes nothing (the
    ledger publishes an order's steps in order on one partition, but a re-drive may come late)."""
    if before is not None and before.get("updated_at"):
        try:
            if datetime.fromisoformat(step.at) < datetime.fromisoformat(before["updated_at"]):
                return before
        except (TypeError, ValueError):  # a block from a malformed time: the newer step wins
            pass
    return {
        "status": step.status,
        "amount": step.amount,
        "order_id": step.order_id,
        "batch_id": step.batch_id,
        "updated_at": step.at,
    }


def project(state: ApplicationState, data: Downstream, event_time: str) -> ApplicationState:
    """The application as the partner sees it after one more downstream event (its parsed data)."""
    status, rank, decision = state.status, state.status_rank, state.decision
    announcement = dict(state.announcement) if state.announcement else None
    objections = dict(state.objections)
    payment = state.payment

    def advance(new_status: str, new_decision: dict[str, Any] | None) -> None:
        nonlocal status, rank, decision
        new_rank = STATUS_RANK[new_status]
        if new_rank >= rank:
            status, rank = new_status, new_rank
            if new_decision is not None:
                decision = new_decision

    if isinstance(data, ApplicationAssessed):
        if data.eligible:
            if decision is None:
                decision = _decision_from_assessment(data)
        else:
            advance("ineligible", _decision_from_assessment(data))
    elif isinstance(data, AwardDecided):
        advance(data.status, _decision_from_award(data))
    elif isinstance(data, AwardReviewed):
        advance(data.status, _decision_from_review(decision, data))
    elif isinstance(data, AwardRevoked):
        revoked = dict(decision or {})
        revoked["reasons"] = [
            *revoked.get("reasons", []),
            {
                # OBJECTION_UPHELD when an upheld objection revoked it; REVOKED for an operator's.
                "code": data.reason_code if data.reason_code is not None else "REVOKED",
                "message": data.reason if data.reason is not None else "revoked by an operator",
                "citation": None,
            },
        ]
        revoked["revoked_awarded"] = revoked.get("awarded")
        revoked["awarded"] = "0.00"
        advance("revoked", revoked)
        if announcement is not None:
            announcement["withdrawn_at"] = event_time
    elif isinstance(data, AnnouncementPublished):
        before = announcement or {}
        announcement = _announcement(
            None,
            objections,
            id=data.announcement_id if data.announcement_id is not None else before.get("id"),
            published_at=_as_sent(data, "published_at", event_time),
            notice_ends_at=data.notice_ends_at,
            finalized_at=before.get("finalized_at"),
        )
    elif isinstance(data, ObjectionFiled | ObjectionResolved):
        if isinstance(data, ObjectionFiled):
            objections.setdefault(data.objection_id, OPEN)
        else:
            objections[data.objection_id] = data.outcome
        if announcement is not None:  # else counted when announcement.published arrives
            announcement = _announcement(
                announcement, objections, id=announcement.get("id") or data.announcement_id
            )
    elif isinstance(data, AwardFinalized):
        announcement = _announcement(announcement, objections, finalized_at=_as_sent(data, "finalized_at", event_time))
    elif isinstance(data, PaymentStep):
        payment = _payment(payment, data)
    return ApplicationState(status, rank, decision, announcement, objections, payment)


def for_timeline(event: Event) -> Event:
    """The envelope intake keeps in an application's timeline (and shows in its event history):
    as consumed, except that objection.filed keeps no trace of who objected or what they said,
    and a payment step keeps its account only masked (the ledger sends it so; a step that did not
    is not kept in full here either)."""
    if event.type == ObjectionFiled.event_type:
        return event.model_copy(update={"data": {k: event.data[k] for k in _OBJECTION_KEPT if k in event.data}})
    account = event.data.get("masked_account")
    if event.type in _PAYMENT_TYPES and isinstance(account, str) and not is_masked(account):
        return event.model_copy(update={"data": {**event.data, "masked_account": mask_account(account)}})
    return event


def request_fingerprint(body: Any) -> str:
    """Same JSON value → same hash, whatever the key order or white space."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class StoredApplication:
    """An application as intake keeps it: the input as received and its projected state."""

    id: str
    seq: int
    program: str
    year: int
    subject: str
    input: dict[str, Any]
    status: str
    decision: dict[str, Any] | None
    announcement: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    call_id: str | None = None  # None for applications from before calls
    payee: dict[str, Any] | None = None  # in full, as given (account_name, account_number, bank_code)
    payment: dict[str, Any] | None = None


@dataclass(frozen=True)
class TimelineItem:
    """One event that touched an application, with its envelope when intake kept it."""

    event_id: uuid.UUID
    type: str
    source: str
    time: datetime
    envelope: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "time": self.time.isoformat(), "source": self.source, "event_id": str(self.event_id)}

    def as_envelope(self, app_id: str, *, reveal_accounts: bool = False) -> dict[str, Any]:
        """The envelope as shown: intake's own events carry the payee, its account number masked
        unless `reveal_accounts` (a payment officer asks)."""
        if self.envelope is not None:
            envelope = dict(self.envelope)
            data = envelope.get("data")
            if not reveal_accounts and self.type in _WITH_PAYEE and isinstance(data, dict) and data.get("payee"):
                envelope["data"] = {**data, "payee": masked(data["payee"])}
            return envelope
        # recorded before envelopes were kept: what the timeline has, marked incomplete
        return {"id": str(self.event_id), "type": self.type, "source": self.source, "time": self.time.isoformat(),
                "subject": app_id, "data": None, "incomplete": True}


def public_view(
    app: StoredApplication, timeline: list[TimelineItem] | None, *, reveal_accounts: bool = False
) -> dict[str, Any]:
    """The application as its partner sees it (with its timeline when asked for one); the payee's
    account number masked unless `reveal_accounts` (a payment officer asks)."""
    inp = app.input
    out: dict[str, Any] = {
        "id": app.id,
        "program": app.program,
        "year": app.year,
        "call_id": app.call_id,
        "applicant": inp.get("applicant"),
        "subject": app.subject,
        "requested_amount": inp.get("requested_amount"),
        "facts": inp.get("facts"),
        "payee": app.payee if reveal_accounts else masked(app.payee),
        "status": app.status,
        "decision": app.decision,
        "announcement": app.announcement,
        "payment": app.payment,
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
    }
    if timeline is not None:
        out["timeline"] = [item.to_wire() for item in timeline]
    return out
