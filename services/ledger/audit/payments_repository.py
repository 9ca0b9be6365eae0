"""The SQL of verify's payments check (services.ledger.audit.payments): each payment order with what
the journal's payment entries of its application hold for it, streamed in (beneficiary, order id)
order a page at a time. The entries are found through the journal's application index, so the cost
grows with the orders, not with the journal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.payments.domain import PAYMENT_KINDS

_ORDER_BALANCES = text(
    "SELECT o.id, o.applicant_id, o.status, o.amount_fen, "
    "coalesce(sum(x.amount) FILTER (WHERE x.account = 'order:' || o.id), 0), "
    "coalesce(sum(x.amount) FILTER (WHERE x.account = 'transit:' || o.id), 0), "
    "coalesce(-sum(x.amount) FILTER (WHERE j.kind = 'payment_settled' AND x.account = 'transit:' || o.id), 0), "
    "coalesce(-sum(x.amount) FILTER (WHERE j.kind = 'payment_cancelled' AND x.account = 'order:' || o.id), 0), "
    "coalesce(sum(x.amount) FILTER (WHERE j.kind = 'posting' AND x.account = 'order:' || o.id), 0), "
    "coalesce(sum(x.amount) FILTER (WHERE j.kind = 'payment_settled' AND x.account = 'paid:' || o.applicant_id), 0) "
    "FROM payment_orders o "
    "LEFT JOIN journal_entries j ON j.application_id = o.application_id AND j.kind = ANY(CAST(:kinds AS text[])) "
    "LEFT JOIN LATERAL (SELECT p->>'account' AS account, (p->>'amount')::bigint AS amount "
    "                   FROM jsonb_array_elements(j.postings) p) x ON true "
    "GROUP BY o.id ORDER BY o.applicant_id, o.id")


async def order_balances(session: AsyncSession, page: int) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Every payment order with its journal balances (OrderBalances' fields, in order), `page` rows
    at a time (the session's transaction holds the cursor: call it inside verify's snapshot)."""
    result = await session.stream(_ORDER_BALANCES, {"kinds": list(PAYMENT_KINDS)})
    async for rows in result.partitions(page):
        yield rows
