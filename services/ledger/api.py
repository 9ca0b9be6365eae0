"""Ledger's HTTP routes: balances, awards, revocation, the journal and its verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from services.ledger.domain import ListFilter, draws_wire
from services.ledger.handlers import revoke_award, verify_ledger
from services.ledger.repository import SqlLedgerRepository
from shared.kernel.money import format_fen
from shared.web.actions import ReasonBody
from shared.web.auth import Principal, require
from shared.web.context import ServiceContext
from shared.web.openapi import AUTHENTICATED, NO_NUL, problems

router = APIRouter(tags=["ledger"], responses=problems(*AUTHENTICATED))

Reader = Annotated[Principal, Depends(require("operator", "auditor"))]
Operator = Annotated[Principal, Depends(require("operator"))]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Beneficiary = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
Year = Annotated[int | None, Query(ge=2000, le=2100)]
ProgramCode = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
ApplicationId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]


@router.get("/v1/balances")
async def balances(
    request: Request,
    _: Reader,
    beneficiary: Beneficiary = None,
    year: Year = None,
    program: ProgramCode = None,
) -> dict[str, Any]:
    """Every pool instance against its cap. `year` filters beneficiary-year pools (subject pools have none)."""
    async with _ctx(request).maker() as session:
        pools = await SqlLedgerRepository(session).pool_balances(ListFilter(beneficiary, year, program))
    items = []
    for b in pools:
        item: dict[str, Any] = {
            "pool": b.key.pool, "beneficiary": b.key.beneficiary, "year": b.key.year, "cap": format_fen(b.cap_fen),
            "committed": format_fen(b.committed_fen), "available": format_fen(b.available_fen),
        }
        if b.key.subject is not None:
            item["subject"] = b.key.subject
        items.append(item)
    return {"items": items}


@router.get("/v1/awards")
async def awards(
    request: Request,
    _: Reader,
    beneficiary: Beneficiary = None,
    year: Year = None,
    program: ProgramCode = None,
) -> dict[str, Any]:
    """Granted awards (base and top-ups), live and revoked, in decision order."""
    async with _ctx(request).maker() as session:
        listings = await SqlLedgerRepository(session).awards_page(ListFilter(beneficiary, year, program))
    items = []
    for listing in listings:
        row, award, revocation = listing.row, listing.row.award, listing.revocation
        items.append({
            "application_id": award.application_id,
            "program": award.program,
            "beneficiary": award.beneficiary,
            "year": row.year,
            "subject": row.subject,
            "overlap": {"applicant": award.overlap.applicant, "subject": award.overlap.subject,
                        "milestone": award.overlap.milestone},
            "amount": format_fen(award.amount_fen),
            "top_up_of": award.top_up_of,
            "status": "revoked" if row.revoked else "live",
            "journal_seq": row.journal_seq,
            "draws": draws_wire(award.draws),
            "revocation": None if revocation is None else {
                "reason": revocation.reason, "revoked_by": revocation.revoked_by,
                "revoked_at": revocation.revoked_at.isoformat() if revocation.revoked_at else None},
        })
    return {"items": items}


@router.post("/v1/awards/{application_id}/revoke", responses=problems(400, 404, 409))
async def revoke(request: Request, application_id: ApplicationId, body: ReasonBody, principal: Operator) -> dict[str, Any]:
    """Compensating entry, pools restored, `award.revoked` published. A second call changes nothing
    and answers the first revocation again."""
    ctx = _ctx(request)
    async with ctx.unit_of_work() as session:
        result = await revoke_award(SqlLedgerRepository(session), application_id, reason=body.reason, revoked_by=principal.who,
                                    now=datetime.now(UTC))
    return result.data


@router.get("/v1/journal")
async def journal(
    request: Request,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    async with _ctx(request).maker() as session:
        entries = await SqlLedgerRepository(session).journal_page(after, limit)
    items = [
        {
            "seq": e.seq, "kind": e.kind, "application_id": e.application_id, "event_id": e.event_id,
            "postings": [{"account": p.account, "amount": format_fen(p.amount_fen)} for p in e.postings],
            "prev_hash": e.prev_hash, "hash": e.hash, "recorded_for": e.recorded_for,
        }
        for e in entries
    ]
    return {"items": items, "next_after": entries[-1].seq if len(entries) == limit else None}


@router.get("/v1/audit/verify")
async def audit_verify(request: Request, _: Reader) -> dict[str, Any]:
    async with _ctx(request).snapshot() as session:  # one snapshot: chain, head and pools
        return await verify_ledger(SqlLedgerRepository(session))
