"""Every SQL statement of the reviews: the queue, the award under review and what its review
writes. The locks, the journal and the re-decision of a chain are the ledger's own
(SqlLedgerRepository, which this extends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from services.ledger.domain import AWARD_REJECTED, ListFilter, ReviewBasis
from services.ledger.journal.domain import pool_account
from services.ledger.repository import (
    AWARD_COLUMNS,
    SqlLedgerRepository,
    award_of,
    award_row_of,
    filter_clause,
    json_text,
)
from services.ledger.reviews.domain import PendingReview, Reviewable, ReviewRow
from shared.contracts.events import AwardDecided


@dataclass(frozen=True)
class Standing:
    """Where an application stands for a review: its decision's status and its award's review
    state (None: no award, or one decided at once)."""

    status: str
    review: str | None
    revoked: bool


class SqlReviewRepository(SqlLedgerRepository):
    async def reviewable(self, application_id: str) -> Reviewable | None:
        """The application's award if it is held for review (pending, not revoked)."""
        row = (await self.session.execute(
            text(f"SELECT {AWARD_COLUMNS}, d.data AS decision, d.correlation_id AS decision_correlation, "
                 "d.call_id AS decided_call_id FROM awards a JOIN decisions d USING (application_id) "
                 "WHERE a.application_id = :a AND a.review = 'pending' AND NOT a.revoked"),
            {"a": application_id},
        )).one_or_none()
        if row is None:
            return None
        return Reviewable(award_row_of(row), AwardDecided.model_validate(row.decision), row.decision_correlation,
                          row.decided_call_id)

    async def standing(self, application_id: str) -> Standing | None:
        row = (await self.session.execute(
            text("SELECT d.status, a.review, coalesce(a.revoked, false) AS revoked FROM decisions d "
                 "LEFT JOIN awards a USING (application_id) WHERE d.application_id = :a"),
            {"a": application_id},
        )).one_or_none()
        return None if row is None else Standing(row.status, row.review, row.revoked)

    async def record_review(self, row: ReviewRow) -> None:
        """The review's audit row; its award as approved (or rejected: no longer live); its decision's
        status and what it grants."""
        await self.session.execute(
            text("INSERT INTO reviews (application_id, decision, held_fen, awarded_fen, reason, reviewed_by, "
                 "reviewed_by_name, reviewed_at, journal_seq, event_id, data) VALUES (:a, :d, :h, :aw, :r, :by, "
                 ":name, :at, :j, :e, CAST(:data AS jsonb))"),
            {"a": row.application_id, "d": row.decision, "h": row.held_fen, "aw": row.awarded_fen, "r": row.reason,
             "by": row.reviewed_by, "name": row.reviewed_by_name, "at": row.reviewed_at, "j": row.journal_seq,
             "e": row.event_id, "data": json_text(row.data)},
        )
        if row.kept is not None:
            await self.update_awards([row.kept])
        else:
            await self.session.execute(
                text("UPDATE awards SET review = :rejected, revoked = true WHERE application_id = :a"),
                {"a": row.application_id, "rejected": AWARD_REJECTED})
        await self.session.execute(
            text("UPDATE decisions SET status = :s, awarded_fen = :aw WHERE application_id = :a"),
            {"a": row.application_id, "s": row.status, "aw": row.awarded_fen},
        )

    async def pending_page(self, filters: ListFilter, *, after: int | None, limit: int) -> list[PendingReview]:
        """Holds oldest first (by their journal entry), after journal seq `after`, at most `limit`,
        each with the pools it draws on as they stand."""
        where, params = filter_clause(filters, "a.", "a.program")
        if after is not None:
            where += " AND a.journal_seq > :after"
            params["after"] = after
        rows = (await self.session.execute(
            text(f"SELECT {AWARD_COLUMNS}, d.entitlement_fen, d.recorded_for, d.data AS decision, d.review_basis "
                 f"FROM awards a JOIN decisions d USING (application_id) WHERE a.review = 'pending' "
                 f"AND NOT a.revoked AND {where} ORDER BY a.journal_seq LIMIT :n"),
            {**params, "n": limit},
        )).all()
        awards = [award_of(r) for r in rows]
        accounts = sorted({pool_account(k) for award in awards for k, _ in award.draws})
        pools = {pool_account(b.key): b for b in await self.pool_balances(accounts=accounts)} if accounts else {}
        return [_pending(r, award, pools) for r, award in zip(rows, awards, strict=True)]


def _pending(r: Any, award: Any, pools: dict[str, Any]) -> PendingReview:
    return PendingReview(
        award=award, year=r.year, subject=r.subject, journal_seq=r.journal_seq, entitlement_fen=r.entitlement_fen,
        decided_at=r.recorded_for, decision=AwardDecided.model_validate(r.decision),
        basis=None if r.review_basis is None else ReviewBasis.from_stored(r.review_basis),
        pools=tuple(pools[pool_account(k)] for k, _ in award.draws if pool_account(k) in pools),
    )
