"""What the ledger's routes depend on: its typed service context, the role aliases, a snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.ledger.repository import SqlLedgerRepository
from shared.web.context import ServiceContext
from shared.web.deps import OperatorDep, StaffReaderDep

__all__ = ["ContextDep", "LedgerContext", "OperatorDep", "SnapshotDep", "StaffReaderDep", "ledger_context"]


@dataclass
class LedgerContext(ServiceContext):
    """The ledger runs no workers beyond the shared consumer loop and outbox relay; its decisions
    happen in the consumer's transaction, its revocations in a route's unit of work."""


def ledger_context(request: Request) -> LedgerContext:
    ctx: LedgerContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[LedgerContext, Depends(ledger_context)]


async def _snapshot(ctx: ContextDep) -> AsyncIterator[SqlLedgerRepository]:
    async with ctx.snapshot() as session:
        yield SqlLedgerRepository(session)


# Reads that see one snapshot of the database (read-only), closed as soon as the route returns.
SnapshotDep = Annotated[SqlLedgerRepository, Depends(_snapshot, scope="function")]
