"""Intake's pure logic: the status projection over downstream events, the partner's view of an
application, request hashes."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.contracts.events import (
    AnnouncementPublished,
    ApplicationAssessed,
    AwardDecided,
    AwardFinalized,
    AwardRevoked,
    EventData,
    Reason,
)

SOURCE = "grantline.intake"  # the source of intake's events

# What the status projection shows: the downstream events about an application.
Downstream = ApplicationAssessed | AwardDecided | AwardRevoked | AnnouncementPublished | AwardFinalized
DOWNSTREAM: dict[str, type[Downstream]] = {
    model.event_type: model
    for model in (ApplicationAssessed, AwardDecided, AwardRevoked, AnnouncementPublished, AwardFinalized)
}

# A status only moves forward: events from different topics may be consumed out of order.
STATUS_RANK = {
    "received": 0,
    "ineligible": 1,
    "approved": 2,
    "partially_approved": 2,
    "rejected": 2,
    "revoked": 3,
}
FINAL_STATUSES = frozenset({"ineligible", "approved", "partially_approved", "rejected", "revoked"})


@dataclass
class ApplicationState:
    status: str
    status_rank: int
    decision: dict[str, Any] | None
    announcement: dict[str, Any] | None = field(default=None)


def _reasons(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [reason.to_data() for reason in reasons]


def _decision_from_assessment(data: ApplicationAssessed) -> dict[str, Any]:
    return {
        "entitlement": data.entitlement if data.entitlement is not None else "0.00",
        "awarded": "0.00",
        "limited_by": None,
        "reasons": _reasons(data.reasons),
    }


def _as_sent(data: EventData, field_name: str, absent: str) -> str | None:
    """The field as sent (a null included); `absent` when the event left it out."""
    return getattr(data, field_name) if field_name in data.model_fields_set else absent


def project(state: ApplicationState, data: Downstream, event_time: str) -> ApplicationState:
    """The application as the partner sees it after one more downstream event (its parsed data)."""
    status, rank, decision = state.status, state.status_rank, state.decision
    announcement = dict(state.announcement) if state.announcement else None

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
        advance(
            data.status,
            {
                "entitlement": data.entitlement if data.entitlement is not None else "0.00",
                "awarded": data.awarded if data.awarded is not None else "0.00",
                "limited_by": data.limited_by,
                "reasons": _reasons(data.reasons),
            },
        )
    elif isinstance(data, AwardRevoked):
        revoked = dict(decision or {})
        revoked["reasons"] = [
            *revoked.get("reasons", []),
            {
                "code": "REVOKED",
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
        announcement = {
            "published_at": _as_sent(data, "published_at", event_time),
            "notice_ends_at": data.notice_ends_at,
            "finalized_at": (announcement or {}).get("finalized_at"),
        }
    elif isinstance(data, AwardFinalized):
        announcement = dict(announcement or {"published_at": None, "notice_ends_at": None})
        announcement["finalized_at"] = _as_sent(data, "finalized_at", event_time)
    return ApplicationState(status, rank, decision, announcement)


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

    def as_envelope(self, app_id: str) -> dict[str, Any]:
        if self.envelope is not None:
            return dict(self.envelope)
        # recorded before envelopes were kept: what the timeline has, marked incomplete
        return {"id": str(self.event_id), "type": self.type, "source": self.source, "time": self.time.isoformat(),
                "subject": app_id, "data": None, "incomplete": True}


def public_view(app: StoredApplication, timeline: list[TimelineItem] | None) -> dict[str, Any]:
    """The application as its partner sees it (with its timeline when asked for one)."""
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
        "status": app.status,
        "decision": app.decision,
        "announcement": app.announcement,
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
    }
    if timeline is not None:
        out["timeline"] = [item.to_wire() for item in timeline]
    return out
