"""Every SQL statement of the dashboard: recent decisions and revocations, what changed since a
live cursor, the filters' choices and the names shown beside pools. The pools
themselves are the ledger's one pool snapshot (SqlLedgerRepository.pool_balances), the review
queue the reviews' own (SqlReviewRepository.pending_page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from services.ledger.dashboard.domain import (
    DecisionLine,
    LiveCursor,
    PoolLine,
    RevocationLine,
)
from services.ledger.domain import ListFilter
from services.ledger.repository import SqlLedgerRepository, filter_clause
from services.ledger.reviews.domain import PendingReview
from services.ledger.reviews.repository import SqlReviewRepository
from shared.contracts.events import ANY_BENEFICIARY
from shared.db.repository import Repository

# An award a reviewer rejected is no award any more (nothing to revoke), nor a revoked one.
_DECISION_COLUMNS = (
    "d.seq, d.application_id, d.program, d.beneficiary, d.year, d.status, d.awarded_fen, d.recorded_for, "
    "d.data->'applicant'->>'name' AS name, d.data->>'subject' AS subject, "
    "a.application_id IS NOT NULL AND a.review IS DISTINCT FROM 'rejected' AS has_award, "
    "coalesce(a.revoked AND a.review IS DISTINCT FROM 'rejected', false) AS revoked, d.data->'draws' AS draws"
)
_DECISIONS = f"SELECT {_DECISION_COLUMNS} FROM decisions d LEFT JOIN awards a USING (application_id) WHERE {{where}} "
_REVIEWED = (
    f"SELECT r.journal_seq AS reviewed_seq, {_DECISION_COLUMNS} FROM reviews r JOIN decisions d USING "
    "(application_id) LEFT JOIN awards a USING (application_id) WHERE {where} "
)
_REVOCATIONS = (
    "SELECT r.journal_seq, r.application_id, r.revoked_at, r.amount_fen, r.reason, r.revoked_by, "
    "a.program, a.beneficiary, a.year, a.draws, r.data->'applicant'->>'name' AS name "
    "FROM revocations r JOIN awards a USING (application_id) WHERE {where} "
)


class DashboardRepository(Repository):
    async def pools(self, filters: ListFilter, *, accounts: Sequence[str] | None = None,
                    limit: int) -> list[PoolLine]:
        """Pools, nearest exhaustion first, each with its beneficiary's latest name."""
        balances = await SqlLedgerRepository(self.session).pool_balances(
            filters, accounts=accounts, limit=limit, order="utilisation")
        names = await self._names({b.key.beneficiary for b in balances} - {ANY_BENEFICIARY})
        return [PoolLine.of(b, names) for b in balances]

    async def _names(self, beneficiaries: set[str]) -> dict[str, str | None]:
        if not beneficiaries:
            return {}
        rows = await self.session.execute(
            text("SELECT DISTINCT ON (beneficiary) beneficiary, data->'applicant'->>'name' AS name FROM decisions "
                 "WHERE beneficiary = ANY(CAST(:b AS text[])) ORDER BY beneficiary, seq DESC"),
            {"b": sorted(beneficiaries)},
        )
        return {r.beneficiary: r.name for r in rows}

    async def decisions(self, filters: ListFilter, *, after: int | None = None, limit: int) -> list[DecisionLine]:
        """The newest first; with `after`, the oldest first after decisions.seq `after` (the live stream)."""
        rows = await self._lines(_DECISIONS, "d.", "d.program", "d.seq", filters, after, limit)
        return [_decision(r) for r in rows]

    async def reviewed(self, filters: ListFilter, *, after: int, limit: int) -> list[tuple[int, DecisionLine]]:
        """Decisions reviewed after journal seq `after` (the live stream), oldest review first, as they
        stand now: (the review's journal seq, the decision)."""
        rows = await self._lines(_REVIEWED, "d.", "d.program", "r.journal_seq", filters, after, limit)
        return [(r.reviewed_seq, _decision(r)) for r in rows]

    async def revocations(self, filters: ListFilter, *, after: int | None = None,
                          limit: int) -> list[RevocationLine]:
        """The newest first; with `after`, the oldest first after journal seq `after` (the live stream)."""
        rows = await self._lines(_REVOCATIONS, "a.", "a.program", "r.journal_seq", filters, after, limit)
        return [_revocation(r) for r in rows]

    async def _lines(self, select: str, alias: str, program: str, seq: str, filters: ListFilter,
                     after: int | None, limit: int) -> Sequence[Any]:
        where, params = filter_clause(filters, alias, program)
        order = f"{seq} DESC"
        if after is not None:
            where, order, params["after"] = f"{where} AND {seq} > :after", seq, after
        sql = select.format(where=where) + f"ORDER BY {order} LIMIT :n"
        return (await self.session.execute(text(sql), {**params, "n": limit})).all()

    async def holds(self, filters: ListFilter, *, limit: int) -> list[PendingReview]:
        """The review queue, oldest first (the reviews' own read)."""
        return await SqlReviewRepository(self.session).pending_page(filters, after=None, limit=limit)

    async def newest(self) -> LiveCursor:
        """The newest decision, and revocation or review, whatever the filters."""
        row = (await self.session.execute(text(
            "SELECT coalesce((SELECT max(seq) FROM decisions), 0), greatest("
            "coalesce((SELECT max(journal_seq) FROM revocations), 0), "
            "coalesce((SELECT max(journal_seq) FROM reviews), 0))"))).one()
        return LiveCursor(row[0], row[1])

    async def programs(self) -> list[str]:
        return list((await self.session.execute(text("SELECT DISTINCT program FROM decisions ORDER BY 1"))).scalars())

    async def years(self) -> list[int]:
        return list((await self.session.execute(
            text("SELECT DISTINCT year FROM decisions ORDER BY 1 DESC"))).scalars())


def _decision(r: Any) -> DecisionLine:
    return DecisionLine(
        seq=r.seq, application_id=r.application_id, program=r.program, beneficiary=r.beneficiary, year=r.year,
        status=r.status, awarded_fen=r.awarded_fen, recorded_for=r.recorded_for, name=r.name, subject=r.subject,
        has_award=bool(r.has_award), revoked=bool(r.revoked), draws=r.draws,
    )


def _revocation(r: Any) -> RevocationLine:
    return RevocationLine(
        journal_seq=r.journal_seq, application_id=r.application_id, revoked_at=r.revoked_at,
        amount_fen=r.amount_fen, reason=r.reason, revoked_by=r.revoked_by, program=r.program,
        beneficiary=r.beneficiary, year=r.year, draws=r.draws, name=r.name,
    )
