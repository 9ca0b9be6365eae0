"""What the dashboard does: assemble the page, find what changed since a live cursor, revoke, review."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from services.ledger.dashboard.domain import (
    ApplicantHit,
    BatchLine,
    CallBudget,
    DecisionLine,
    LiveCursor,
    OrderLine,
    PoolLine,
    PoolUsage,
    ProgramMonth,
    RevocationLine,
    accounts_of,
)
from services.ledger.dashboard.repository import DashboardRepository
from services.ledger.domain import ListFilter
from services.ledger.handlers import RevokeRepository, revoke_award
from services.ledger.journal.domain import pool_account
from services.ledger.reviews.domain import PendingReview, ReviewDecision
from services.ledger.reviews.handlers import ReviewRepository, review_award
from shared.kernel.errors import Conflict, NotFound, ValidationFailed
from shared.kernel.money import Fen

REVOKED_BY = "operator:dashboard"  # the bootstrap operator's revocations from here
PAGE_ROWS = 50  # rows of each table on a page
T = TypeVar("T")
LIVE_BATCH = 100  # decisions and revocations per poll of the live stream
LIVE_POOLS = 500


@dataclass(frozen=True)
class Paging:
    """Where each table's page starts (its cursor from the query string; None: the first page)."""

    reviews_after: int | None = None
    pools_after: str | None = None
    decisions_before: int | None = None
    revocations_before: int | None = None
    batches_before: tuple[str, str] | None = None
    orders_after: str | None = None
    applicants_after: str | None = None


@dataclass(frozen=True)
class Charts:
    year: int | None
    usage: list[PoolUsage]
    months: list[ProgramMonth]
    calls: list[CallBudget]


@dataclass(frozen=True)
class Page:
    cursor: LiveCursor
    pools: list[PoolLine]
    decisions: list[DecisionLine]
    revocations: list[RevocationLine]
    programs: list[str]
    years: list[int]
    holds: list[PendingReview]
    charts: Charts | None = None
    batches: list[BatchLine] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    applicants: list[ApplicantHit] = field(default_factory=list)
    next: dict[str, str] = field(default_factory=dict)  # each table's next-page cursor, by query parameter


def _page(rows: list[T], limit: int, name: str, key: Callable[[T], str], out: dict[str, str]) -> list[T]:
    """The first `limit` of `rows` (read as limit + 1), noting the next page's cursor under `name`."""
    if len(rows) > limit:
        out[name] = key(rows[limit - 1])
    return rows[:limit]


async def load_page(repo: DashboardRepository, filters: ListFilter, *, activity: bool = True, ledger: bool = True,
                    payments: bool = False, paging: Paging = Paging(), search: str | None = None,
                    limit: int = PAGE_ROWS) -> Page:
    """Everything the page shows, from one snapshot (the repository's session), a page of each
    table: with `ledger` the review queue (oldest first) and the pools; with `activity` the recent
    decisions and revocations; with `payments` the batches and orders; the charts for the
    filtered year (the latest when none); and the applicants matching `search`."""
    nxt: dict[str, str] = {}
    n = limit + 1
    cursor = await repo.newest()
    years = await repo.years()
    pools = holds = decisions = revocations = batches = orders = applicants = []  # type: ignore[var-annotated]
    if ledger:
        pools = _page(await repo.pools_page(filters, after=paging.pools_after, limit=n), limit, "pools_after",
                      lambda p: pool_account(p.balance.key), nxt)
        holds = _page(await repo.holds(filters, after=paging.reviews_after, limit=n), limit, "reviews_after",
                      lambda h: str(h.journal_seq), nxt)
    if activity:
        decisions = _page(await repo.decisions(filters, before=paging.decisions_before, limit=n), limit,
                          "decisions_before", lambda d: str(d.seq), nxt)
        revocations = _page(await repo.revocations(filters, before=paging.revocations_before, limit=n), limit,
                            "revocations_before", lambda r: str(r.journal_seq), nxt)
    if payments:
        batches = _page(await repo.batches(filters, before=paging.batches_before, limit=n), limit, "batches_before",
                        lambda b: f"{b.created_at.isoformat()}|{b.id}", nxt)
        orders = _page(await repo.orders(filters, after=paging.orders_after, limit=n), limit, "orders_after",
                       lambda o: o.id, nxt)
    if search:
        applicants = _page(await repo.applicants(search, after=paging.applicants_after, limit=n), limit,
                           "applicants_after", lambda a: a.beneficiary, nxt)
    year = filters.year if filters.year is not None else (years[0] if years else None)
    charts = Charts(year, await repo.pool_usage(year=year, program=filters.program),
                    await repo.program_months(year=filters.year, program=filters.program),
                    await repo.call_budgets(year=year))
    return Page(cursor, pools, decisions, revocations, await repo.programs(), years, holds, charts, batches, orders,
                applicants, nxt)


@dataclass(frozen=True)
class Changes:
    decisions: list[DecisionLine]
    revocations: list[RevocationLine]
    pools: list[PoolLine]  # the pools those decisions and revocations touched
    cursor: LiveCursor


async def load_changes(repo: DashboardRepository, filters: ListFilter, cursor: LiveCursor, *,
                       activity: bool = True) -> Changes | None:
    """What happened after `cursor` (at most LIVE_BATCH of each kind), or None when nothing did:
    new decisions, revocations, and reviewed decisions (as they stand now); without `activity`,
    only the pools those changes touched."""
    decisions = await repo.decisions(filters, after=cursor.decision_seq, limit=LIVE_BATCH)
    revocations = await repo.revocations(filters, after=cursor.journal_seq, limit=LIVE_BATCH)
    reviewed = await repo.reviewed(filters, after=cursor.journal_seq, limit=LIVE_BATCH)
    if not decisions and not revocations and not reviewed:
        return None
    # A decision that skipped the filter still moves the cursor past it (the next poll starts after it).
    newest = await repo.newest()
    accounts = sorted({a for r in decisions for a in accounts_of(r.draws)}
                      | {a for r in revocations for a in accounts_of(r.draws)}
                      | {a for _, r in reviewed for a in accounts_of(r.draws)})
    pools = await repo.pools(filters, accounts=accounts, limit=LIVE_POOLS) if accounts else []
    # Revocations and reviews share the journal's numbering: a full batch of either stops the cursor
    # at its last one (the other's then come again, and the page shows each once).
    full = [revocations[-1].journal_seq] if len(revocations) == LIVE_BATCH else []
    if len(reviewed) == LIVE_BATCH:
        full.append(reviewed[-1][0])
    moved = LiveCursor(
        decisions[-1].seq if len(decisions) == LIVE_BATCH else max(cursor.decision_seq, newest.decision_seq),
        min(full) if full else max(cursor.journal_seq, newest.journal_seq),
    )
    if not activity:
        return Changes([], [], pools, moved)
    return Changes([*decisions, *(line for _, line in reviewed)], revocations, pools, moved)


async def revoke_from_dashboard(repo: RevokeRepository, application_id: str, *, reason: str, now: datetime,
                                revoked_by: str = REVOKED_BY) -> str:
    """Revoke as `POST /v1/awards/{id}/revoke` does; the notice the page shows afterwards."""
    try:
        result = await revoke_award(repo, application_id, reason=reason, revoked_by=revoked_by, now=now)
    except NotFound:
        return "not-found"
    except Conflict:
        return "not-revocable"
    return "revoked" if result.created else "already-revoked"


_REVIEWED_NOTICES = {"approved": "approved", "partially_approved": "partially-approved", "rejected": "rejected"}


async def review_from_dashboard(repo: ReviewRepository, application_id: str, *, verdict: ReviewDecision,
                                amount_fen: Fen | None, reason: str, reviewed_by: dict[str, str],
                                now: datetime) -> str:
    """Review as `POST /v1/awards/{id}/review` does; the notice the page shows afterwards."""
    try:
        data = await review_award(repo, application_id, verdict=verdict, amount_fen=amount_fen, reason=reason,
                                  reviewed_by=reviewed_by, now=now)
    except NotFound:
        return "not-found"
    except Conflict:
        return "review-conflict"
    except ValidationFailed:
        return "amount-invalid"
    return _REVIEWED_NOTICES[data["status"]]
