"""Ledger's HTTP routes: balances, awards, revocation, the journal and its verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from services.ledger.audit.handlers import run_verify
from services.ledger.deps import (
    ContextDep,
    ListQueryDep,
    OperatorDep,
    ReviewQueueReaderDep,
    SnapshotDep,
    StaffReaderDep,
)
from services.ledger.handlers import (
    list_awards,
    list_balances,
    list_subject_clashes,
    revoke_award,
)
from services.ledger.payments.handlers import cancel_order, guard_revocation
from services.ledger.payments.repository import SqlPaymentRepository
from services.ledger.repository import SqlLedgerRepository
from services.ledger.schemas import (
    ApplicationId,
    AwardPage,
    AwardView,
    Balance,
    BalancePage,
    Cursor,
    JournalAfter,
    JournalEntryView,
    JournalLimit,
    JournalPage,
    Limit,
    SubjectClashPage,
    SubjectClashView,
    VerifyFrom,
    VerifyReport,
)
from shared.web.actions import ReasonBody
from shared.web.openapi import AUTHENTICATED, problems

router = APIRouter(tags=["ledger"], responses=problems(*AUTHENTICATED))


@router.get("/v1/balances", response_model=BalancePage, response_model_exclude_unset=True)
async def balances(_: ReviewQueueReaderDep, repo: SnapshotDep, query: ListQueryDep) -> BalancePage:
    """Every pool instance against its cap, by beneficiary, pool, year and subject, a page at a time
    (`next_cursor` asks for the next). `year` filters beneficiary-year pools (subject pools have none).
    `held` is the part of `committed` held for awards pending review. Reviewers read it too (they
    weigh a hold against its pools)."""
    pools, next_cursor = await list_balances(repo, query.filters, cursor=query.cursor, limit=query.limit)
    return BalancePage(items=[Balance.of(b) for b in pools], next_cursor=next_cursor)


@router.get("/v1/awards", response_model=AwardPage)
async def awards(_: StaffReaderDep, repo: SnapshotDep, query: ListQueryDep) -> AwardPage:
    """Granted awards (base and top-ups), live and revoked, in decision order, a page at a time
    (`next_cursor` asks for the next)."""
    listings, next_cursor = await list_awards(repo, query.filters, cursor=query.cursor, limit=query.limit)
    return AwardPage(items=[AwardView.of(listing) for listing in listings], next_cursor=next_cursor)


@router.post("/v1/awards/{application_id}/revoke", responses=problems(400, 404, 409))
async def revoke(application_id: ApplicationId, body: ReasonBody, principal: OperatorDep,
                 ctx: ContextDep) -> dict[str, Any]:
    """Compensating entry, pools restored, `award.revoked` published. A second call changes nothing
    and answers the first revocation again. An award whose payment is sent or settled is a 409
    (money has left); a payment order not yet sent is cancelled with it."""
    async with ctx.unit_of_work() as session:
        payments = SqlPaymentRepository(session)
        order = await guard_revocation(payments, application_id)  # 409 once money has left
        now = datetime.now(UTC)
        result = await revoke_award(SqlLedgerRepository(session), application_id, reason=body.reason,
                                    revoked_by=principal.who, now=now)
        if result.created and order is not None:
            await cancel_order(payments, order, cause=result.data, now=now)
    return result.data


@router.get("/v1/journal", response_model=JournalPage)
async def journal(_: StaffReaderDep, repo: SnapshotDep, after: JournalAfter = 0,
                  limit: JournalLimit = 100) -> JournalPage:
    entries = await repo.journal_page(after, limit)
    return JournalPage(items=[JournalEntryView.of(e) for e in entries],
                       next_after=entries[-1].seq if len(entries) == limit else None)


@router.get("/v1/audit/verify", response_model=VerifyReport, response_model_exclude_unset=True)
async def audit_verify(_: StaffReaderDep, ctx: ContextDep, start: VerifyFrom = "genesis") -> dict[str, Any]:
    """Re-hash the chain and re-derive every pool's cap and committed from the journal, a page at a
    time. `from=genesis` (the default) reads the whole journal; `from=checkpoint` starts at the latest
    verify checkpoint still on the chain (`from_seq` says which) and reads only what came after it.
    A run that finds the ledger intact records a checkpoint for the next."""
    async with ctx.snapshot() as session:  # one snapshot: the chain, the head and the pools
        verification = await run_verify(SqlLedgerRepository(session), incremental=start == "checkpoint")
    if verification.worth_recording:
        assert verification.checkpoint is not None
        async with ctx.maker() as session, session.begin():
            await SqlLedgerRepository(session).insert_checkpoint(verification.checkpoint)
    return verification.report


@router.get("/v1/audit/subject-clashes", response_model=SubjectClashPage)
async def subject_clashes(_: StaffReaderDep, repo: SnapshotDep, cursor: Cursor = None,
                          limit: Limit = 50) -> SubjectClashPage:
    """Rows that fold to one subject key but were kept apart when existing rows got their keys
    (pools and overlap chains written another way before subjects were compared by key): which
    one has the key, and what every one of them held. For the auditor to settle."""
    clashes, next_cursor = await list_subject_clashes(repo, cursor=cursor, limit=limit)
    return SubjectClashPage(items=[SubjectClashView.of(c) for c in clashes], next_cursor=next_cursor)
