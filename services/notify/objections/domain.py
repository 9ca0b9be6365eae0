"""Objections' pure logic: what a citizen files, the events filing and resolving write, and who
sees what of an objection. No I/O, no clock.

Who sees what (CONTRACT.md: the objector's name and contact are never published):
- the public: only how many objections to an announcement are open (`objections_open`);
- reviewers (who resolve objections and may have to reach the objector): everything;
- operators and auditors without the reviewer role: the statement and its handling, not who
  objected (name, organisation, contact);
- the partner (webhook `objection.resolved`): the outcome and the reviewer's reason only.
`objection.filed` is the one event that carries the name and contact; nothing logs them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.notify.domain import SOURCE, Position
from shared.contracts.envelope import Event
from shared.contracts.events import Actor, ObjectionFiled, ObjectionResolved, new_typed_event

ObjectionStatus = Literal["open", "upheld", "dismissed"]
Outcome = Literal["upheld", "dismissed"]

PERSONAL_FIELDS = ("name", "organisation", "contact")
"""What identifies the objector: shown to reviewers only, never published or logged."""

# Per client address and instance: a citizen files one or two; a burst of them is a flood.
OBJECTIONS_BURST = 10
OBJECTIONS_PER_SECOND = 1 / 60

OBJECTIONS_CURSOR = "objections:"  # the last objection's position (filed_at/id)


@dataclass(frozen=True)
class Objection:
    """What a citizen files (validated by the schema: name, contact and statement not blank)."""

    name: str
    contact: str
    statement: str
    organisation: str | None = None


@dataclass(frozen=True)
class Target:
    """The announcement an objection is filed against, as its row stands."""

    announcement_id: str
    application_id: str
    applicant_id: str
    partner_id: str
    correlation_id: str
    published_event_id: uuid.UUID


@dataclass(frozen=True)
class Filed:
    id: str
    event: Event
    filed_at: datetime


@dataclass(frozen=True)
class Resolution:
    """An objection as its conditional update left it (open → outcome)."""

    id: str
    announcement_id: str
    application_id: str
    outcome: Outcome
    reason: str
    resolved_by: dict[str, Any]
    resolved_at: datetime
    resolved_event_id: uuid.UUID
    filed_event_id: uuid.UUID


def new_objection_id() -> str:
    return "obj_" + uuid.uuid4().hex


def filed(target: Target, objection: Objection, *, objection_id: str, now: datetime) -> Filed:
    """`objection.filed`: the only event that carries the objector's name and contact."""
    fields: dict[str, Any] = {} if objection.organisation is None else {"organisation": objection.organisation}
    data = ObjectionFiled(
        objection_id=objection_id,
        announcement_id=target.announcement_id,
        application_id=target.application_id,
        name=objection.name,
        contact=objection.contact,
        statement=objection.statement,
        filed_at=now.isoformat(),
        **fields,
    )
    event = new_typed_event(
        data,
        source=SOURCE,
        subject=target.application_id,
        correlation_id=target.correlation_id,
        causation_id=str(target.published_event_id),
        time=now,
    )
    return Filed(objection_id, event, now)


def resolved_event(resolution: Resolution, *, partner_id: str | None, correlation_id: str) -> Event:
    """`objection.resolved` (no name, no contact): upheld → the ledger revokes the award."""
    return new_typed_event(
        ObjectionResolved(
            objection_id=resolution.id,
            announcement_id=resolution.announcement_id,
            application_id=resolution.application_id,
            partner_id=partner_id,
            outcome=resolution.outcome,
            reason=resolution.reason,
            resolved_by=Actor.model_validate(resolution.resolved_by),
            resolved_at=resolution.resolved_at.isoformat(),
        ),
        source=SOURCE,
        subject=resolution.application_id,
        correlation_id=correlation_id,
        causation_id=str(resolution.filed_event_id),
        time=resolution.resolved_at,
        event_id=resolution.resolved_event_id,
    )


def why_not_open(*, finalized: bool, withdrawn: bool) -> str:
    """The 409's detail for an announcement that takes no more objections."""
    if withdrawn:
        return "the announcement was withdrawn (the award was revoked); it takes no objections"
    if finalized:
        return "the announcement is final; objections are no longer accepted"
    return "the notice period has ended; late objections are not accepted"


def position_of(filed_at: datetime, objection_id: str) -> str:
    return Position(filed_at, objection_id).key()


def staff_view(row: Any, *, sees_objector: bool) -> dict[str, Any]:
    """An objection as staff see it: the objector's name, organisation and contact only for
    reviewers (`sees_objector`), null for everyone else."""
    resolution = None
    if row.status != "open":
        resolution = {
            "outcome": row.status,
            "reason": row.resolution_reason,
            "by": row.resolved_by,
            "at": row.resolved_at.isoformat(),
        }
    return {
        "id": row.id,
        "announcement_id": row.announcement_id,
        "application_id": row.application_id,
        "applicant_name": row.applicant_name,
        "program": row.program,
        "year": row.year,
        "subject": row.subject,
        "status": row.status,
        "statement": row.statement,
        "name": row.name if sees_objector else None,
        "organisation": row.organisation if sees_objector else None,
        "contact": row.contact if sees_objector else None,
        "filed_at": row.filed_at.isoformat(),
        "resolution": resolution,
    }
