"""What every repository is built on: a service's `repository.py` subclasses `Repository` (or,
when its changes publish events, shared.messaging.outbox.PublishingRepository)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    """Statements run in the caller's session: its transaction, or its read-only snapshot
    (shared.db.uow). A repository never commits: the unit of work does."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
