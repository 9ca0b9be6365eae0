"""What a review does (review_award) and the queue (list_reviews)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from services.ledger.domain import AWARD_APPROVED, AWARD_REJECTED, ListFilter, as_stored, with_call
from services.ledger.handlers import SOURCE, ChainWrites, RevokeRepository, chain_under_lock, lock_award
from services.ledger.journal.domain import JournalHead, approval_postings, change_postings
from services.ledger.reviews.domain import (
    APPROVE,
    PendingReview,
    Reviewable,
    ReviewDecision,
    ReviewRow,
    reviewed_data,
    settle_review,
)
from services.ledger.reviews.repository import Standing
from shared.contracts.events import AwardReviewed, new_typed_event
from shared.kernel.cursors import next_page, page_after, parse_seq
from shared.kernel.errors import Conflict, NotFound
from shared.kernel.money import Fen

REVIEWS_CURSOR = "reviews:"  # the last hold's journal seq


class ReviewRepository(RevokeRepository, Protocol):
    async def reviewable(self, application_id: str) -> Reviewable | None: ...

    async def standing(self, application_id: str) -> Standing | None: ...

    async def record_review(self, row: ReviewRow) -> None: ...


class QueueRepository(Protocol):
    async def pending_page(self, filters: ListFilter, *, after: int | None, limit: int) -> list[PendingReview]: ...


async def review_award(
    repo: ReviewRepository,
    application_id: str,
    *,
    verdict: ReviewDecision,
    amount_fen: Fen | None,
    reason: str,
    reviewed_by: dict[str, str],
    now: datetime,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Settle an award held for review (approve `amount_fen`, None: all of it; or reject), in the
    repository's transaction; the award.reviewed data.

    What is not approved is released to every pool the award drew on, and the rest of its overlap
    chain is re-decided as after a revocation (events caused by the review's, ids derived from
    it, so a replay repeating the review writes the same journal). The locks are a revocation's;
    the award is read again under them, so of two reviews at once the second finds it settled.
    404 without a decision; 409 when it is not (or no longer) held for review; 422 naming `amount`
    for an amount above the hold or of nothing. `now` and `event_id` are the review's time and
    event id (the recorded ones on replay).
    """
    found = await _pending(repo, application_id)
    settle_review(found.row.award, found.decision, verdict, amount_fen, reason)  # a bad amount answers before any lock
    chained = found.row.in_chain
    before, head = await lock_award(repo, found.row.award, chained=chained)
    found = await _pending(repo, application_id)  # under the locks: a concurrent review or revocation settled it?
    award = found.row.award
    outcome = settle_review(award, found.decision, verdict, amount_fen, reason)
    members = await chain_under_lock(repo, award, before, chained=chained)
    event = new_typed_event(
        AwardReviewed.model_validate(with_call(reviewed_data(found, outcome, reviewed_by=reviewed_by, reason=reason,
                                                             reviewed_at=now), found.call_id)),
        source=SOURCE, subject=application_id, correlation_id=found.correlation_id, time=now, event_id=event_id,
    )
    writes = ChainWrites(JournalHead(head.seq, head.hash), now)
    pools_of_award = [key for key, _ in award.draws]
    first = None
    if outcome.awarded_fen > 0:
        first = writes.entry("approval", application_id, str(event.id),
                             approval_postings(award.beneficiary, outcome.awarded_fen))
    if outcome.released_fen > 0:
        entry = writes.entry("release" if outcome.decision == APPROVE else "rejection", application_id, str(event.id),
                             change_postings(application_id, award.beneficiary, pools_of_award, -outcome.released_fen,
                                             held=True))
        first = first or entry
    assert first is not None  # a hold is > 0: something was approved or released
    writes.events.append((event, award.beneficiary))
    pools = before
    if outcome.released_fen > 0:
        pools = writes.give_back(award, before, members, cause=event, kept=outcome.kept)
    row = ReviewRow(
        application_id=application_id, decision=outcome.decision, held_fen=outcome.held_fen,
        awarded_fen=outcome.awarded_fen, reason=reason, reviewed_by=reviewed_by["id"],
        reviewed_by_name=reviewed_by.get("name"), reviewed_at=now, journal_seq=first.seq, event_id=event.id,
        data=as_stored(event.data), status=outcome.status, kept=outcome.kept,
    )
    await writes.flush(repo, before, pools, settle=lambda: repo.record_review(row))
    return event.data


async def _pending(repo: ReviewRepository, application_id: str) -> Reviewable:
    found = await repo.reviewable(application_id)
    if found is not None:
        return found
    standing = await repo.standing(application_id)
    if standing is None:
        raise NotFound(f"no decision for application {application_id}")
    if standing.review in (AWARD_APPROVED, AWARD_REJECTED):
        raise Conflict(f"application {application_id} was already reviewed ({standing.status})")
    if standing.revoked:
        raise Conflict(f"application {application_id} was revoked: nothing to review")
    raise Conflict(f"application {application_id} is {standing.status}, not pending review")


async def list_reviews(repo: QueueRepository, filters: ListFilter, *, cursor: str | None,
                       limit: int) -> tuple[list[PendingReview], str | None]:
    """A page of the awards held for review, oldest first, and the next page's cursor."""
    after = page_after(cursor or None, REVIEWS_CURSOR, parse_seq)
    rows = await repo.pending_page(filters, after=after, limit=limit + 1)
    return next_page(rows, limit, REVIEWS_CURSOR, lambda p: p.journal_seq)
