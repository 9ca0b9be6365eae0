"""Every SQL statement of the exports: keyset pages of awards (by journal seq), payment orders (by
id) and pools (the ledger's one pool snapshot, in key order), each with the applicant's name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from services.ledger.domain import ListFilter, PoolBalance, PoolKey
from services.ledger.payments.repository import order_filter
from services.ledger.repository import SqlLedgerRepository, filter_clause
from shared.db.repository import Repository

_AWARDS = (
    "SELECT a.application_id, a.program, a.beneficiary, a.year, a.subject, a.amount_fen, a.top_up_of, "
    "a.journal_seq, a.revoked, a.review, d.recorded_for AS decided_at, d.data->'applicant'->>'name' AS name, "
    "r.revoked_at, r.reason FROM awards a JOIN decisions d USING (application_id) "
    "LEFT JOIN revocations r USING (application_id) WHERE {where} ORDER BY a.journal_seq LIMIT :n"
)
_ORDERS = (
    "SELECT o.id, o.application_id, o.applicant_id, o.program, o.year, o.amount_fen, o.status, o.batch_id, "
    "o.reason, o.updated_at, p.account_name, p.account_number, p.bank_code, "
    "d.data->'applicant'->>'name' AS name FROM payment_orders o LEFT JOIN payees p USING (application_id) "
    "LEFT JOIN decisions d USING (application_id) WHERE {where} ORDER BY o.id LIMIT :n"
)


class ExportRepository(Repository):
    async def awards(self, filters: ListFilter, *, after: int | None, limit: int) -> Sequence[Any]:
        """Granted awards as /v1/awards lists them (live, held, rejected in review, revoked), in
        journal order after journal seq `after`."""
        where, params = filter_clause(filters, "a.", "a.program")
        if after is not None:
            where += " AND a.journal_seq > :after"
            params["after"] = after
        return (await self.session.execute(text(_AWARDS.format(where=where)), {**params, "n": limit})).all()

    async def orders(self, *, status: str | None, batch_id: str | None, after: str | None,
                     limit: int) -> Sequence[Any]:
        """Payment orders as /v1/payment-orders lists them, in id order after `after`."""
        where, params = order_filter(status=status, batch_id=batch_id, after=after, limit=limit)
        return (await self.session.execute(text(_ORDERS.format(where=where)), params)).all()

    async def pools(self, filters: ListFilter, *, after: PoolKey | None, limit: int) -> list[PoolBalance]:
        """Pools as /v1/balances lists them, in key order after the pool `after`."""
        return await SqlLedgerRepository(self.session).pool_balances(filters, after=after, limit=limit)

    async def names(self, beneficiaries: set[str]) -> dict[str, str | None]:
        """Each beneficiary's name in its latest decision."""
        return await SqlLedgerRepository(self.session).beneficiary_names(beneficiaries)
