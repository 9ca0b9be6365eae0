"""Every SQL statement of the dashboard: recent decisions and revocations, what changed since a
live cursor, the filters' choices and the names shown beside pools. The pools
themselves are the ledger's one pool snapshot (SqlLedgerRepository.pool_balances), the review
queue the reviews' own (SqlReviewRepository.pending_page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

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
    like_pattern,
)
from services.ledger.domain import ListFilter, PoolBalance
from services.ledger.journal.domain import parse_pool_account
from services.ledger.repository import _HELD_BY_POOL, POOL_PROGRAM, SqlLedgerRepository, filter_clause
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
        return await SqlLedgerRepository(self.session).beneficiary_names(beneficiaries)

    async def decisions(self, filters: ListFilter, *, after: int | None = None, before: int | None = None,
                        limit: int) -> list[DecisionLine]:
        """The newest first (before decisions.seq `before`: the next page); with `after`, the oldest
        first after decisions.seq `after` (the live stream)."""
        rows = await self._lines(_DECISIONS, "d.", "d.program", "d.seq", filters, after, limit, before)
        return [_decision(r) for r in rows]

    async def reviewed(self, filters: ListFilter, *, after: int, limit: int) -> list[tuple[int, DecisionLine]]:
        """Decisions reviewed after journal seq `after` (the live stream), oldest review first, as they
        stand now: (the review's journal seq, the decision)."""
        rows = await self._lines(_REVIEWED, "d.", "d.program", "r.journal_seq", filters, after, limit)
        return [(r.reviewed_seq, _decision(r)) for r in rows]

    async def revocations(self, filters: ListFilter, *, after: int | None = None, before: int | None = None,
                          limit: int) -> list[RevocationLine]:
        """The newest first (before journal seq `before`: the next page); with `after`, the oldest
        first after journal seq `after` (the live stream)."""
        rows = await self._lines(_REVOCATIONS, "a.", "a.program", "r.journal_seq", filters, after, limit, before)
        return [_revocation(r) for r in rows]

    async def _lines(self, select: str, alias: str, program: str, seq: str, filters: ListFilter,
                     after: int | None, limit: int, before: int | None = None) -> Sequence[Any]:
        where, params = filter_clause(filters, alias, program)
        order = f"{seq} DESC"
        if before is not None:
            where, params["before"] = f"{where} AND {seq} < :before", before
        if after is not None:
            where, order, params["after"] = f"{where} AND {seq} > :after", seq, after
        sql = select.format(where=where) + f"ORDER BY {order} LIMIT :n"
        return (await self.session.execute(text(sql), {**params, "n": limit})).all()

    async def holds(self, filters: ListFilter, *, after: int | None = None, limit: int) -> list[PendingReview]:
        """The review queue, oldest first, after journal seq `after` (the reviews' own read)."""
        return await SqlReviewRepository(self.session).pending_page(filters, after=after, limit=limit)

    async def pools_page(self, filters: ListFilter, *, after: str | None, limit: int) -> list[PoolLine]:
        """Pools nearest exhaustion first (as `pools`), a page after the pool account `after`, each
        with its beneficiary's latest name. The order is utilisation, then room left, then account:
        a page starts after where its cursor pool stands now."""
        where, params = filter_clause(filters, "p.", POOL_PROGRAM.format(alias="p."))
        sql = (
            "WITH ranked AS (SELECT p.account, p.cap_fen, p.committed_fen, coalesce(h.held_fen, 0) AS held_fen, "
            "CASE WHEN p.cap_fen = 0 THEN 1 ELSE p.committed_fen::numeric / p.cap_fen END AS r, "
            f"p.cap_fen - p.committed_fen AS rem FROM pools p LEFT JOIN ({_HELD_BY_POOL}) h "
            f"ON h.account = p.account WHERE {where}) SELECT ranked.* FROM ranked"
        )
        if after is not None:
            sql += (", (SELECT r AS r0, rem AS rem0 FROM ranked WHERE account = :after) c WHERE ranked.r < c.r0 "
                    "OR (ranked.r = c.r0 AND (ranked.rem > c.rem0 OR (ranked.rem = c.rem0 AND ranked.account > "
                    ":after)))")
            params["after"] = after
        sql += " ORDER BY ranked.r DESC, ranked.rem, ranked.account LIMIT :n"
        rows = (await self.session.execute(text(sql), {**params, "n": limit})).all()
        balances = [PoolBalance(parse_pool_account(r.account), r.cap_fen, r.committed_fen, r.held_fen) for r in rows]
        names = await self._names({b.key.beneficiary for b in balances} - {ANY_BENEFICIARY})
        return [PoolLine.of(b, names) for b in balances]

    # -----------------------------------------------------------------------------------------
    # Charts
    # -----------------------------------------------------------------------------------------

    async def pool_usage(self, *, year: int | None, program: str | None) -> list[PoolUsage]:
        """Each pool name in `year` (and the per-subject pools, which have none), its instances summed."""
        where: list[str] = ["true"]
        params: dict[str, Any] = {}
        if year is not None:
            where.append("(p.year = :year OR p.year IS NULL)")
            params["year"] = year
        if program is not None:
            where.append(f"{POOL_PROGRAM.format(alias='p.')} = :program")
            params["program"] = program
        rows = await self.session.execute(text(
            "SELECT p.pool, p.year, count(*) AS n, sum(p.cap_fen)::bigint AS cap, sum(p.committed_fen)::bigint AS com, "
            f"coalesce(sum(h.held_fen), 0)::bigint AS held FROM pools p LEFT JOIN ({_HELD_BY_POOL}) h "
            f"ON h.account = p.account WHERE {' AND '.join(where)} GROUP BY p.pool, p.year "
            "ORDER BY p.year IS NULL, p.pool LIMIT 200"), params)
        return [PoolUsage(r.pool, r.year, r.n, r.cap, r.com, r.held) for r in rows]

    async def program_months(self, *, year: int | None, program: str | None) -> list[ProgramMonth]:
        """Committed (live and held awards, by the month of their decision) and paid (settled
        orders, by the month of settlement) per program and month, Beijing time."""
        where: list[str] = ["true"]
        params: dict[str, Any] = {}
        if year is not None:
            where.append("x.year = :year")
            params["year"] = year
        if program is not None:
            where.append("x.program = :program")
            params["program"] = program
        month = "to_char(({t})::timestamptz AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
        rows = await self.session.execute(text(
            "SELECT program, month, sum(committed)::bigint AS committed, sum(paid)::bigint AS paid FROM ("
            f"SELECT a.program, a.year, {month.format(t='d.recorded_for')} AS month, a.amount_fen AS committed, "
            "0 AS paid FROM awards a JOIN decisions d USING (application_id) WHERE NOT a.revoked "
            f"UNION ALL SELECT o.program, o.year, {month.format(t='o.updated_at')}, 0, o.amount_fen "
            f"FROM payment_orders o WHERE o.status = 'settled') x WHERE {' AND '.join(where)} "
            "GROUP BY program, month ORDER BY program, month LIMIT 2000"), params)
        return [ProgramMonth(r.program, r.month, r.committed, r.paid) for r in rows]

    async def call_budgets(self, *, year: int | None) -> list[CallBudget]:
        """Every call's budget pool (the newest years first), with the program it was opened for."""
        where = "p.pool = 'call-budget'"
        params: dict[str, Any] = {}
        if year is not None:
            where += " AND p.year = :year"
            params["year"] = year
        rows = await self.session.execute(text(
            "SELECT p.subject, p.year, p.cap_fen, p.committed_fen, coalesce(h.held_fen, 0) AS held_fen, "
            "(SELECT d.program FROM decisions d WHERE d.call_id = p.subject LIMIT 1) AS program "
            f"FROM pools p LEFT JOIN ({_HELD_BY_POOL}) h ON h.account = p.account WHERE {where} "
            "ORDER BY p.year DESC NULLS LAST, p.subject LIMIT 50"), params)
        return [CallBudget(r.subject or "", r.year, r.program, r.cap_fen, r.committed_fen, r.held_fen) for r in rows]

    # -----------------------------------------------------------------------------------------
    # Payments and the applicant search
    # -----------------------------------------------------------------------------------------

    async def batches(self, filters: ListFilter, *, before: tuple[str, str] | None, limit: int) -> list[BatchLine]:
        """Payment batches, newest first, before (created_at, id) `before`."""
        where: list[str] = ["true"]
        params: dict[str, Any] = {"n": limit}
        if filters.program is not None:
            where.append("(b.program = :program OR b.program IS NULL)")  # a batch of every program may hold it
            params["program"] = filters.program
        if filters.year is not None:
            where.append("(b.year = :year OR b.year IS NULL)")
            params["year"] = filters.year
        if before is not None:
            where.append("(b.created_at, b.id) < (CAST(:bt AS timestamptz), :bid)")
            params["bt"], params["bid"] = before
        rows = await self.session.execute(text(
            "SELECT b.id, b.status, b.program, b.year, b.count, b.control_sum_fen, b.created_by, b.approved_by, "
            f"b.created_at, b.sent_at FROM payment_batches b WHERE {' AND '.join(where)} "
            "ORDER BY b.created_at DESC, b.id DESC LIMIT :n"), params)
        return [BatchLine(r.id, r.status, r.program, r.year, r[4], r.control_sum_fen, r.created_by, r.approved_by,
                          r.created_at, r.sent_at) for r in rows]

    async def orders(self, filters: ListFilter, *, after: str | None, limit: int) -> list[OrderLine]:
        """Payment orders in id order after `after`, with the applicant's name."""
        where, params = filter_clause(filters, "o.", "o.program")
        where = where.replace("o.beneficiary", "o.applicant_id")
        if after is not None:
            where += " AND o.id > :after"
            params["after"] = after
        rows = await self.session.execute(text(
            "SELECT o.id, o.application_id, o.applicant_id, d.data->'applicant'->>'name' AS name, o.program, o.year, "
            "o.amount_fen, o.status, o.batch_id, o.updated_at FROM payment_orders o LEFT JOIN decisions d "
            f"USING (application_id) WHERE {where} ORDER BY o.id LIMIT :n"), {**params, "n": limit})
        return [OrderLine(r.id, r.application_id, r.applicant_id, r.name, r.program, r.year, r.amount_fen, r.status,
                          r.batch_id, r.updated_at) for r in rows]

    async def applicants(self, q: str, *, after: str | None, limit: int) -> list[ApplicantHit]:
        """Applicants whose name contains `q`, or whose code (USCC) or an application id is or
        contains it, by code after `after`; each with its latest name."""
        params: dict[str, Any] = {"q": q, "like": like_pattern(q), "n": limit}
        where = ("(beneficiary ILIKE :like OR application_id = :q OR data->'applicant'->>'name' ILIKE :like "
                 "OR beneficiary IN (SELECT beneficiary FROM decisions WHERE application_id = :q))")
        if after is not None:
            where += " AND beneficiary > :after"
            params["after"] = after
        rows = await self.session.execute(text(
            "SELECT beneficiary, (array_agg(data->'applicant'->>'name' ORDER BY seq DESC))[1] AS name, "
            f"count(*) AS n FROM decisions WHERE {where} GROUP BY beneficiary ORDER BY beneficiary LIMIT :n"), params)
        return [ApplicantHit(r.beneficiary, r.name, r.n) for r in rows]

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
