"""What the ledger's routes take and answer: the query parameters and the JSON bodies, built
from the domain's objects. Amounts on the wire are two-decimal yuan strings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel

from services.ledger.domain import (
    AWARD_PENDING,
    AWARD_REJECTED,
    AwardListing,
    PoolBalance,
    SubjectClash,
    draws_wire,
)
from services.ledger.journal.domain import JournalEntry
from shared.kernel.money import format_fen
from shared.web.openapi import NO_NUL

Beneficiary = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
Year = Annotated[int | None, Query(ge=2000, le=2100)]
ProgramCode = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
ApplicationId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]
# A balances cursor carries a pool's account, which may be long (the subject is the receipt's).
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=200)]
JournalAfter = Annotated[int, Query(ge=0, le=2**63 - 1)]
JournalLimit = Annotated[int, Query(ge=1, le=1000)]


# ---------------------------------------------------------------------------------------------
# Balances
# ---------------------------------------------------------------------------------------------


class Balance(BaseModel):
    """One pool instance against its cap; `subject` only for per-subject pools. `committed`
    includes `held`, the part held for awards pending review (holds count against the cap)."""

    pool: str
    beneficiary: str
    year: int | None
    cap: str
    committed: str
    held: str
    available: str
    subject: str | None = None

    @classmethod
    def of(cls, b: PoolBalance) -> Balance:
        fields: dict[str, Any] = {
            "pool": b.key.pool, "beneficiary": b.key.beneficiary, "year": b.key.year,
            "cap": format_fen(b.cap_fen), "committed": format_fen(b.committed_fen), "held": format_fen(b.held_fen),
            "available": format_fen(b.available_fen),
        }
        if b.key.subject is not None:  # left out, not null, for a beneficiary-year pool
            fields["subject"] = b.key.subject
        return cls(**fields)


class BalancePage(BaseModel):
    items: list[Balance]
    next_cursor: str | None  # null on the last page


# ---------------------------------------------------------------------------------------------
# Awards
# ---------------------------------------------------------------------------------------------


class Overlap(BaseModel):
    applicant: str
    subject: str
    milestone: str


class PoolDraw(BaseModel):
    pool: str
    beneficiary: str
    year: int | None
    subject: str | None
    amount: str


class RevocationView(BaseModel):
    reason: str | None
    revoked_by: str | None
    revoked_by_name: str | None = None  # a staff member's name; null for the bootstrap identities
    revoked_at: str | None


class AwardView(BaseModel):
    application_id: str
    program: str
    beneficiary: str
    year: int
    subject: str
    overlap: Overlap
    amount: str
    top_up_of: str | None
    status: str  # live | pending_review (held: `amount` is the hold) | rejected (in review) | revoked
    journal_seq: int
    draws: list[PoolDraw]
    revocation: RevocationView | None

    @classmethod
    def of(cls, listing: AwardListing) -> AwardView:
        row, award, revocation = listing.row, listing.row.award, listing.revocation
        return cls(
            application_id=award.application_id,
            program=award.program,
            beneficiary=award.beneficiary,
            year=row.year,
            subject=row.subject,
            overlap=Overlap(applicant=award.overlap.applicant, subject=award.overlap.subject,
                            milestone=award.overlap.milestone),
            amount=format_fen(award.amount_fen),
            top_up_of=award.top_up_of,
            status=_award_status(award.review, row.revoked),
            journal_seq=row.journal_seq,
            draws=[PoolDraw(**d) for d in draws_wire(award.draws)],
            revocation=None if revocation is None else RevocationView(
                reason=revocation.reason, revoked_by=revocation.revoked_by, revoked_by_name=revocation.revoked_by_name,
                revoked_at=revocation.revoked_at.isoformat() if revocation.revoked_at else None),
        )


def _award_status(review: str | None, revoked: bool) -> str:
    if review == AWARD_REJECTED:
        return "rejected"
    if revoked:
        return "revoked"
    return "pending_review" if review == AWARD_PENDING else "live"


class AwardPage(BaseModel):
    items: list[AwardView]
    next_cursor: str | None  # null on the last page


# ---------------------------------------------------------------------------------------------
# The journal and its verification
# ---------------------------------------------------------------------------------------------


class PostingView(BaseModel):
    account: str
    amount: str


class JournalEntryView(BaseModel):
    seq: int
    kind: str
    application_id: str
    event_id: str
    postings: list[PostingView]
    prev_hash: str
    hash: str
    recorded_for: str

    @classmethod
    def of(cls, e: JournalEntry) -> JournalEntryView:
        return cls(seq=e.seq, kind=e.kind, application_id=e.application_id, event_id=e.event_id,
                   postings=[PostingView(account=p.account, amount=format_fen(p.amount_fen)) for p in e.postings],
                   prev_hash=e.prev_hash, hash=e.hash, recorded_for=e.recorded_for)


class JournalPage(BaseModel):
    items: list[JournalEntryView]
    next_after: int | None


class PoolMismatch(BaseModel):
    """A pool whose row and journal disagree: committed (`journal`, `table`) and cap (`journal_cap`,
    `table_cap`; null where there is none), `differs` naming which."""

    pool: str
    beneficiary: str
    year: int | None
    subject: str | None
    journal: str
    table: str
    journal_cap: str | None
    table_cap: str | None
    differs: list[Literal["committed", "cap"]]


class VerifyReport(BaseModel):
    """`first_bad_seq`, `problem` and `pools` appear only when something is wrong; `from_seq` only
    for a run from a checkpoint (`from=checkpoint`), the seq it started after."""

    ok: bool
    entries: int
    head: str
    from_seq: int | None = None
    first_bad_seq: int | None = None
    problem: str | None = None
    pools: list[PoolMismatch] | None = None


VerifyFrom = Annotated[Literal["genesis", "checkpoint"], Query(
    alias="from", description="genesis: the whole journal; checkpoint: from the latest verify checkpoint")]


# ---------------------------------------------------------------------------------------------
# Subject clashes (found by the subject-key migration)
# ---------------------------------------------------------------------------------------------


class SubjectClashView(BaseModel):
    """Rows that fold to one subject key and were kept apart: `kind` pool (`scope`: pool,
    beneficiary, year; `kept`: the pool account that has the key) or overlap_chain (`scope`:
    applicant, milestone; `kept`: the overlap subject whose chain has the key); `members`: every
    row, with what it held (fen) when found."""

    id: int
    kind: str
    subject_key: str
    scope: dict[str, Any]
    kept: str
    members: list[dict[str, Any]]
    found_at: str

    @classmethod
    def of(cls, c: SubjectClash) -> SubjectClashView:
        return cls(id=c.id, kind=c.kind, subject_key=c.subject_key, scope=c.scope, kept=c.kept, members=c.members,
                   found_at=c.found_at.isoformat())


class SubjectClashPage(BaseModel):
    items: list[SubjectClashView]
    next_cursor: str | None  # null on the last page
