"""What the dashboard does: assemble the page, find what changed since a live cursor, revoke, review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ledger.dashboard.domain import DecisionLine, LiveCursor, PoolLine, RevocationLine, accounts_of
from services.ledger.dashboard.repository import DashboardRepository
from services.ledger.domain import ListFilter
from services.ledger.handlers import RevokeRepository, revoke_award
from services.ledger.reviews.domain import PendingReview, ReviewDecision
from services.ledger.reviews.handlers import ReviewRepository, review_award
from shared.kernel.errors import Conflict, NotFound, ValidationFailed
from shared.kernel.money import Fen

REVOKED_BY = "operator:dashboard"  # the bootstrap operator's revocations from here
RECENT = 50  # decisions, revocations and holds on the page
PAGE_POOLS = 200
LIVE_BATCH = 100  # decisions and revocations per poll of the live stream
LIVE_POOLS = 500


@dataclass(frozen=True)
class Page:
    cursor: LiveCursor
    pools: list[PoolLine]
    decisions: list[DecisionLine]
    revocations: list[RevocationLine]
    programs: list[str]
    years: list[int]
    holds: list[PendingReview]


async def load_page(repo: DashboardRepository, filters: ListFilter, *, activity: bool = True) -> Page:
    """Everything the page shows, from one snapshot (the repository's session): the review queue
    (oldest first) and the pools, and with `activity` the recent decisions and revocations."""
    cursor = await repo.newest()
    pools = await repo.pools(filters, limit=PAGE_POOLS)
    decisions = await repo.decisions(filters, limit=RECENT) if activity else []
    revocations = await repo.revocations(filters, limit=RECENT) if activity else []
    holds = await repo.holds(filters, limit=RECENT)
    return Page(cursor, pools, decisions, revocations, await repo.programs(), await repo.years(), holds)


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
