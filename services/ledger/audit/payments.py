"""Verify's payments check: every payment order's status agrees with the journal, and every
beneficiary's settled orders with what the journal says was paid to them. The rules are pure;
`payment_problem` reads the rows (services.ledger.audit.payments_repository) in verify's snapshot.

What the journal says of one order (services.ledger.payments.domain's postings): its posting put
the amount on `order:<id>`; sending moves it to `transit:<id>`, a failure or return back; settling
moves it from transit to `paid:<beneficiary>`; a cancellation from the order account back to
payable. So by status, (owed on the order account, in transit, settled, cancelled) must be:

| status | owed | in transit | settled | cancelled |
|---|---|---|---|---|
| awaiting_payee, ready, failed | amount | 0 | 0 | 0 |
| sent | 0 | amount | 0 | 0 |
| settled | 0 | 0 | amount | 0 |
| cancelled | 0 | 0 | 0 | amount |

and posted = amount always. An order's amount edited by a fen, or its status flipped, breaks one
of these. Per beneficiary, the sum of its settled orders must equal what the payment_settled
entries of its orders put on `paid:<beneficiary>`.

What it does not see: a flip among awaiting_payee, ready and failed (readiness and a payee moves no
money, so the journal has no entry for them; grantline-replay compares the orders themselves), and a
payment entry of an application that has no order row at all (the rows
are found from the orders, through the journal's application index, not by scanning the journal).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.audit.payments_repository import order_balances
from services.ledger.payments.domain import AWAITING_PAYEE, CANCELLED, FAILED, READY, SENT, SETTLED
from shared.kernel.money import format_fen


@dataclass(frozen=True)
class OrderBalances:
    """One order as stored, and what the journal's payment entries of its application hold for it."""

    order_id: str
    beneficiary: str
    status: str
    amount_fen: int
    owed_fen: int  # balance of order:<id>
    transit_fen: int  # balance of transit:<id>
    settled_fen: int  # moved out of transit:<id> by payment_settled entries
    cancelled_fen: int  # moved out of order:<id> by payment_cancelled entries
    posted_fen: int  # put on order:<id> by posting entries
    paid_fen: int  # put on paid:<beneficiary> by this order's payment_settled entries


_WAITING = frozenset({AWAITING_PAYEE, READY, FAILED})


def expected(status: str, amount_fen: int) -> tuple[int, int, int, int] | None:
    """(owed, in transit, settled, cancelled) for an order of `amount_fen` in `status`; None for a
    status that is none of the order states."""
    if status in _WAITING:
        return amount_fen, 0, 0, 0
    return {SENT: (0, amount_fen, 0, 0), SETTLED: (0, 0, amount_fen, 0),
            CANCELLED: (0, 0, 0, amount_fen)}.get(status)


def order_problem(row: OrderBalances) -> str | None:
    """Why this order disagrees with the journal, or None."""
    found = (row.owed_fen, row.transit_fen, row.settled_fen, row.cancelled_fen)
    wanted = expected(row.status, row.amount_fen)
    if wanted == found and row.posted_fen == row.amount_fen:
        return None
    owed, transit, settled, cancelled = (format_fen(x) for x in found)
    return (f"payment order {row.order_id} is {row.status} for {format_fen(row.amount_fen)} but the journal has "
            f"posted {format_fen(row.posted_fen)}, owed {owed}, in transit {transit}, settled {settled}, "
            f"cancelled {cancelled}")


def beneficiary_problem(beneficiary: str, settled_fen: int, paid_fen: int) -> str | None:
    if settled_fen == paid_fen:
        return None
    return (f"beneficiary {beneficiary}: its settled payment orders sum to {format_fen(settled_fen)} but the journal "
            f"paid {format_fen(paid_fen)} to paid:{beneficiary}")


async def first_payment_problem(rows: AsyncIterable[Sequence[OrderBalances]]) -> str | None:
    """The first disagreement, reading the orders a page at a time in (beneficiary, order id) order:
    an order's own, else its beneficiary's once all of that beneficiary's orders are read."""
    current: str | None = None
    settled = paid = 0
    async for page in rows:
        for row in page:
            if row.beneficiary != current:
                if current is not None and (problem := beneficiary_problem(current, settled, paid)) is not None:
                    return problem
                current, settled, paid = row.beneficiary, 0, 0
            if (problem := order_problem(row)) is not None:
                return problem
            settled += row.amount_fen if row.status == SETTLED else 0
            paid += row.paid_fen
    if current is not None:
        return beneficiary_problem(current, settled, paid)
    return None


def with_payment_problem(report: dict[str, Any], problem: str) -> dict[str, Any]:
    """The verify report, not ok, naming the payment problem (after the journal's own, if any)."""
    out = dict(report)
    out["ok"] = False
    out["problem"] = problem if not out.get("problem") else f"{out['problem']}; {problem}"
    return out


async def payment_problem(repo: object, page: int) -> str | None:
    """The first payment order or beneficiary that disagrees with the journal, read through the
    session of `repo` (verify's snapshot); None when all agree, or when `repo` has no database
    session (a fake: there are no payment orders to check)."""
    session = getattr(repo, "session", None)
    if not isinstance(session, AsyncSession):
        return None

    async def pages() -> AsyncIterator[list[OrderBalances]]:
        async for rows in order_balances(session, page):
            yield [OrderBalances(r[0], r[1], r[2], *(int(v) for v in r[3:])) for r in rows]

    return await first_payment_problem(pages())
