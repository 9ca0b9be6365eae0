"""What the review routes take and answer. Amounts on the wire are two-decimal yuan strings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ValidationInfo, field_validator

from services.ledger.domain import draws_wire
from services.ledger.reviews.domain import PendingReview
from services.ledger.schemas import Balance, PoolDraw
from shared.kernel.money import format_fen, parse_amount
from shared.web.actions import ReasonBody


class ReviewBody(ReasonBody):
    """`{"decision": "approve", "amount": "20000000.00", "reason": "专家评审核定"}` (amount optional:
    the whole hold) or `{"decision": "reject", "reason": "…"}`."""

    decision: Literal["approve", "reject"]
    amount: str | None = None

    @field_validator("amount")
    @classmethod
    def _two_decimals(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("decision") == "reject":
            raise ValueError("only an approval takes an amount (a rejection awards nothing)")
        parse_amount(value)  # an AmountError (a ValueError) is a 422 naming amount
        return value

    @property
    def amount_fen(self) -> int | None:
        return None if self.amount is None else parse_amount(self.amount)


class RuleView(BaseModel):
    rule: str
    passed: bool
    detail: str
    citation: str


class ReasonView(BaseModel):
    code: str
    message: str
    citation: str | None


class ApplicantView(BaseModel):
    id: str
    name: str | None


class PendingReviewView(BaseModel):
    """An award held for review: what the policy allows (`entitlement`), what the pools hold for it
    (`held`), what was asked for, the pools it draws on as they stand, and every rule checked with
    the paragraph it cites."""

    application_id: str
    partner_id: str | None
    program: str
    year: int
    applicant: ApplicantView
    subject: str
    decided_at: str
    entitlement: str
    held: str
    requested_amount: str | None
    limited_by: str | None
    top_up_of: str | None
    reasons: list[ReasonView]
    draws: list[PoolDraw]
    pools: list[Balance]
    rules: list[RuleView]
    catalog_version: str | None

    @classmethod
    def of(cls, p: PendingReview) -> PendingReviewView:
        award, decision, basis = p.award, p.decision, p.basis
        applicant = decision.applicant
        requested = basis.requested_fen if basis is not None else None
        fields: dict[str, Any] = {
            "application_id": award.application_id, "partner_id": decision.partner_id, "program": award.program,
            "year": p.year,
            "applicant": ApplicantView(id=award.beneficiary, name=applicant.name if applicant else None),
            "subject": p.subject, "decided_at": p.decided_at, "entitlement": format_fen(p.entitlement_fen),
            "held": format_fen(award.amount_fen), "requested_amount": None if requested is None else format_fen(requested),
            "limited_by": decision.limited_by, "top_up_of": award.top_up_of,
            "reasons": [ReasonView(code=r.code, message=r.message, citation=r.citation) for r in decision.reasons],
            "draws": [PoolDraw(**d) for d in draws_wire(award.draws)],
            "pools": [Balance.of(b) for b in p.pools],
            "rules": [RuleView(rule=r.rule, passed=r.passed, detail=r.detail, citation=r.citation)
                      for r in (basis.rules if basis is not None else ())],
            "catalog_version": decision.catalog_version,
        }
        return cls(**fields)


class ReviewPage(BaseModel):
    items: list[PendingReviewView]
    next_cursor: str | None  # null on the last page
