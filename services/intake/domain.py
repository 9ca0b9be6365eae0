"""Intake's pure logic: the status projection over downstream events, the partner's view of an
application, request hashes."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

SOURCE = "grantline.intake"  # the source of intake's events

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


def _decision_from_assessment(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "entitlement": data.get("entitlement", "0.00"),
        "awarded": "0.00",
        "limited_by": None,
        "reasons": data.get("reasons", []),
    }


def project(
    state: ApplicationState, event_type: str, data: dict[str, Any], event_time: str
) -> ApplicationState:
    """The application as the partner sees it after one more downstream event."""
    status, rank, decision = state.status, state.status_rank, state.decision
    announcement = dict(state.announcement) if state.announcement else None

    def advance(new_status: str, new_decision: dict[str, Any] | None) -> None:
        nonlocal status, rank, decision
        new_rank = STATUS_RANK[new_status]
        if new_rank >= rank:
            status, rank = new_status, new_rank
            if new_decision is not None:
                decision = new_decision

    if event_type == "application.assessed":
        if data.get("eligible"):
            if decision is None:
                decision = _decision_from_assessment(data)
        else:
            advance("ineligible", _decision_from_assessment(data))
    elif event_type == "award.decided":
        new_status = data.get("status", "rejected")
        if new_status in STATUS_RANK:
            advance(
                new_status,
                {
                    "entitlement": data.get("entitlement", "0.00"),
                    "awarded": data.get("awarded", "0.00"),
                    "limited_by": data.get("limited_by"),
                    "reasons": data.get("reasons", []),
                },
            )
    elif event_type == "award.revoked":
        revoked = dict(decision or {})
        revoked["reasons"] = [
            *revoked.get("reasons", []),
            {"code": "REVOKED", "message": data.get("reason", "revoked by an operator"), "citation": None},
        ]
        revoked["revoked_awarded"] = revoked.get("awarded")
        revoked["awarded"] = "0.00"
        advance("revoked", revoked)
        if announcement is not None:
            announcement["withdrawn_at"] = event_time
    elif event_type == "announcement.published":
        announcement = {
            "published_at": data.get("published_at", event_time),
            "notice_ends_at": data.get("notice_ends_at"),
            "finalized_at": (announcement or {}).get("finalized_at"),
        }
    elif event_type == "award.finalized":
        announcement = dict(announcement or {"published_at": None, "notice_ends_at": None})
        announcement["finalized_at"] = data.get("finalized_at", event_time)
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
