"""What the ledger's routes depend on: its typed service context, the role aliases, a snapshot,
the lists' queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.ledger.domain import ListFilter
from services.ledger.repository import SqlLedgerRepository
from services.ledger.reviews.repository import SqlReviewRepository
from services.ledger.schemas import Beneficiary, Cursor, Limit, ProgramCode, Year
from shared.web.context import ServiceContext
from shared.web.deps import (
    OperatorDep,
    ReviewerDep,
    ReviewQueueReaderDep,
    StaffReaderDep,
    service_context,
    snapshot_of,
)

__all__ = [
    "ContextDep",
    "LedgerContext",
    "ListQueryDep",
    "OperatorDep",
    "ReviewQueueReaderDep",
    "ReviewSnapshotDep",
    "ReviewerDep",
    "SnapshotDep",
    "StaffReaderDep",
]


@dataclass
class LedgerContext(ServiceContext):
    """The ledger runs no workers beyond the shared consumer loop and outbox relay; its decisions
    happen in the consumer's transaction, its revocations in a route's unit of work."""


ContextDep = Annotated[LedgerContext, Depends(service_context)]
# Reads that see one snapshot of the database (read-only), closed as soon as the route returns.
SnapshotDep = Annotated[SqlLedgerRepository, snapshot_of(SqlLedgerRepository)]
ReviewSnapshotDep = Annotated[SqlReviewRepository, snapshot_of(SqlReviewRepository)]


@dataclass(frozen=True)
class ListQuery:
    """What the balances and awards lists are asked for: the filters and the page."""

    filters: ListFilter
    cursor: str | None
    limit: int


def list_query(
    beneficiary: Beneficiary = None,
    year: Year = None,
    program: ProgramCode = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ListQuery:
    return ListQuery(ListFilter(beneficiary, year, program), cursor, limit)


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
