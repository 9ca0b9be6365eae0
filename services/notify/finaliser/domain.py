"""The finaliser's pure logic: when a notice ends in finalisation, and the `award.finalized`
event it then emits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.notify.domain import SOURCE
from shared.contracts.envelope import Event
from shared.contracts.events import AwardFinalized, new_typed_event
from shared.kernel.money import format_fen


@dataclass(frozen=True)
class Notice:
    """Where an announcement stands in its notice period (公示)."""

    notice_ends_at: datetime
    finalized_at: datetime | None = None
    withdrawn_at: datetime | None = None  # a revocation took it down
    objections_open: int = 0
    objections_upheld: int = 0  # the ledger revokes the award: it must not become final meanwhile


def finalisable(notice: Notice, now: datetime) -> bool:
    """The award becomes final when its notice has run its full period, was not withdrawn, is
    not final already (ARCHITECTURE.md, "Announcing"), and no objection to it is open or was
    upheld (CONTRACT.md, "Objections"). The finaliser's statement applies this rule set-based
    (finaliser/repository.py); its answer is checked against it."""
    return (
        notice.finalized_at is None
        and notice.withdrawn_at is None
        and notice.notice_ends_at <= now
        and notice.objections_open == 0
        and notice.objections_upheld == 0
    )


@dataclass(frozen=True)
class Finalized:
    """An announcement the finaliser has just made final."""

    application_id: str
    partner_id: str
    applicant_id: str
    program: str
    year: int
    subject: str
    amount_fen: int
    notice_ends_at: datetime
    finalized_at: datetime
    finalized_event_id: uuid.UUID
    decided_event_id: uuid.UUID
    correlation_id: str


def finalized_data(
    *,
    application_id: str,
    partner_id: str,
    program: str,
    year: int,
    subject: str,
    amount_fen: int,
    finalized_at: datetime,
) -> AwardFinalized:
    """`award.finalized` data."""
    return AwardFinalized(
        application_id=application_id,
        partner_id=partner_id,
        program=program,
        year=year,
        subject=subject,
        amount=format_fen(amount_fen),
        finalized_at=finalized_at.isoformat(),
    )


def finalized_event(f: Finalized) -> Event:
    """`award.finalized`, with the id stored on the announcement (so a retried transaction
    emits the same event) and caused by the decision that was announced."""
    return new_typed_event(
        finalized_data(
            application_id=f.application_id,
            partner_id=f.partner_id,
            program=f.program,
            year=f.year,
            subject=f.subject,
            amount_fen=f.amount_fen,
            finalized_at=f.finalized_at,
        ),
        source=SOURCE,
        subject=f.application_id,
        correlation_id=f.correlation_id,
        time=f.finalized_at,
        event_id=f.finalized_event_id,
        causation_id=str(f.decided_event_id),
    )
