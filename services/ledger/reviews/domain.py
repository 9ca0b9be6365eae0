"""The review's pure parts: what a reviewer's decision makes of a hold, the queue's lines and the
award.reviewed data. No I/O, no clock (the caller passes the time)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from services.ledger.domain import (
    AWARD_APPROVED,
    REVIEW_REDUCED,
    REVIEW_REJECTED,
    STATUS_APPROVED,
    STATUS_PARTIALLY_APPROVED,
    STATUS_REJECTED,
    Award,
    AwardRow,
    PoolBalance,
    ReviewBasis,
    draws_wire,
)
from shared.contracts.events import AwardDecided
from shared.kernel.errors import FieldProblem, ValidationFailed
from shared.kernel.money import Fen, format_fen
from shared.policy.reasons import Reason

ReviewDecision = Literal["approve", "reject"]
APPROVE: ReviewDecision = "approve"
REJECT: ReviewDecision = "reject"


@dataclass(frozen=True)
class Reviewable:
    """An award held for review, with what its review needs from its decision."""

    row: AwardRow
    decision: AwardDecided  # as published (status pending_review), but for its call (as_stored)
    correlation_id: str
    call_id: str | None = None  # the receipt's call (decisions.call_id)


@dataclass(frozen=True)
class ReviewOutcome:
    """What a reviewer's decision makes of a hold of `held_fen`."""

    decision: ReviewDecision
    status: str  # approved, partially_approved or rejected
    held_fen: Fen
    awarded_fen: Fen
    reasons: tuple[Reason, ...]  # the decision's, and REVIEW_REDUCED or REVIEW_REJECTED
    kept: Award | None  # the award as it stands once approved; None once rejected

    @property
    def released_fen(self) -> Fen:
        """What goes back to every pool the award drew on."""
        return self.held_fen - self.awarded_fen


def _amount_problem(message: str) -> ValidationFailed:
    return ValidationFailed("the review's amount is not acceptable", errors=[FieldProblem("amount", message)])


def settle_review(award: Award, decision: AwardDecided, verdict: ReviewDecision, amount_fen: Fen | None,
                  reason: str) -> ReviewOutcome:
    """The outcome of approving `amount_fen` (None: the whole hold) of `award`, or rejecting it.

    An approval of the whole hold keeps the decision's status (approved, or partially_approved
    when a pool limited the hold: CONTRACT.md, awarded = entitlement or less); less than the hold
    is partially_approved with REVIEW_REDUCED; a rejection is rejected with REVIEW_REJECTED. An
    amount above the hold, or of nothing, is a 422 naming `amount` (reject awards nothing)."""
    if not award.held:
        raise ValueError(f"{award.application_id} is not held for review")
    held = award.amount_fen
    prior = tuple(Reason(r.code, r.message, r.citation or "") for r in decision.reasons)
    if verdict == REJECT:
        rejected = Reason(REVIEW_REJECTED, f"rejected in review: {reason}", "")
        return ReviewOutcome(REJECT, STATUS_REJECTED, held, 0, (*prior, rejected), None)
    amount = held if amount_fen is None else amount_fen
    if amount > held:
        raise _amount_problem(f"must not exceed the {format_fen(held)} held")
    if amount <= 0:
        raise _amount_problem("must be more than 0.00 (reject the award instead)")
    kept = replace(award, amount_fen=amount, draws=tuple((key, amount) for key, _ in award.draws),
                   review=AWARD_APPROVED)
    if amount == held:
        status = STATUS_APPROVED if decision.limited_by is None else STATUS_PARTIALLY_APPROVED
        return ReviewOutcome(APPROVE, status, held, amount, prior, kept)
    reduced = Reason(REVIEW_REDUCED, f"approved {format_fen(amount)} of the {format_fen(held)} held: {reason}", "")
    return ReviewOutcome(APPROVE, STATUS_PARTIALLY_APPROVED, held, amount, (*prior, reduced), kept)


def reviewed_data(found: Reviewable, outcome: ReviewOutcome, *, reviewed_by: dict[str, str], reason: str,
                  reviewed_at: datetime) -> dict[str, Any]:
    """The award.reviewed data as reviews.data keeps it; published with the award's call
    (services.ledger.domain.with_call)."""
    row, decision = found.row, found.decision
    award = row.award
    return {
        "application_id": award.application_id,
        "partner_id": decision.partner_id,
        "program": award.program,
        "year": row.year,
        "applicant": decision.applicant.to_data() if decision.applicant else {"id": award.beneficiary, "name": None},
        "subject": row.subject,
        "decision": outcome.decision,
        "status": outcome.status,
        "held": format_fen(outcome.held_fen),
        "awarded": format_fen(outcome.awarded_fen),
        "released": format_fen(outcome.released_fen),
        "limited_by": decision.limited_by,
        "reasons": [r.to_wire() for r in outcome.reasons],
        "reviewed_by": reviewed_by,
        "reason": reason,
        "reviewed_at": reviewed_at.isoformat(),
        "draws": draws_wire(outcome.kept.draws) if outcome.kept is not None else [],
    }


@dataclass(frozen=True)
class ReviewRow:
    """The review's audit row, as stored (append-only)."""

    application_id: str
    decision: ReviewDecision
    held_fen: Fen
    awarded_fen: Fen
    reason: str
    reviewed_by: str  # the actor's id
    reviewed_by_name: str | None
    reviewed_at: datetime  # the reviewer's clock, or the recorded time on replay
    journal_seq: int  # the approval or rejection entry
    event_id: uuid.UUID
    data: dict[str, Any]  # the award.reviewed data, as published but for `call_id` (as_stored)
    status: str  # the decision's status once reviewed
    kept: Award | None  # the award once approved; None once rejected


@dataclass(frozen=True)
class PendingReview:
    """One line of the review queue: a hold, with what a reviewer weighs."""

    award: Award
    year: int
    subject: str
    journal_seq: int  # the hold's entry: the queue's order and cursor
    entitlement_fen: Fen
    decided_at: str  # the assessment's time (RFC 3339)
    decision: AwardDecided  # as published
    basis: ReviewBasis | None  # None only for a hold from a receipt that carried no rules
    pools: tuple[PoolBalance, ...]  # the pools it draws on, as they stand
