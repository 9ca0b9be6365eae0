"""The review routes: the queue, and a reviewer's decision on one award."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from services.ledger.deps import ContextDep, ReviewerDep, ReviewQueueReaderDep, ReviewSnapshotDep
from services.ledger.domain import ListFilter
from services.ledger.reviews.handlers import list_reviews, review_award
from services.ledger.reviews.repository import SqlReviewRepository
from services.ledger.reviews.schemas import PendingReviewView, ReviewBody, ReviewPage
from services.ledger.schemas import ApplicationId, Cursor, Limit, ProgramCode, Year
from shared.web.openapi import AUTHENTICATED, problems

router = APIRouter(tags=["reviews"], responses=problems(*AUTHENTICATED))


@router.get("/v1/reviews", response_model=ReviewPage)
async def reviews(_: ReviewQueueReaderDep, repo: ReviewSnapshotDep, program: ProgramCode = None,
                  year: Year = None, cursor: Cursor = None, limit: Limit = 50) -> ReviewPage:
    """Awards held for review (pending_review), oldest first, a page at a time (`next_cursor` asks
    for the next): entitlement, held, requested amount, the pools drawn on as they stand, and the
    rules checked with their citations."""
    pending, next_cursor = await list_reviews(repo, ListFilter(year=year, program=program), cursor=cursor,
                                              limit=limit)
    return ReviewPage(items=[PendingReviewView.of(p) for p in pending], next_cursor=next_cursor)


@router.post("/v1/awards/{application_id}/review", responses=problems(400, 404, 409, 422))
async def review(application_id: ApplicationId, body: ReviewBody, principal: ReviewerDep,
                 ctx: ContextDep) -> dict[str, Any]:
    """Approve all of the hold (no `amount`) or less, or reject it; what is not approved goes back
    to every pool at once. `award.reviewed` is published; its data is the answer. A second review,
    or a review of an award not held for review, is a 409."""
    async with ctx.unit_of_work() as session:
        data = await review_award(SqlReviewRepository(session), application_id, verdict=body.decision,
                                  amount_fen=body.amount_fen, reason=body.reason, reviewed_by=principal.actor,
                                  now=datetime.now(UTC))
    return data
