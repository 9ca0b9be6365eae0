"""Transactions as the services use them: a unit of work for a change and its outbox events, and
a read-only snapshot for answers assembled from several queries. The one place either is spelt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@asynccontextmanager
async def unit_of_work(
    maker: async_sessionmaker[AsyncSession], after_commit: Callable[[], None] | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction for a command's state change and its outbox events; `after_commit` runs
    only once it has committed (the relay's wake-up, so events leave at once)."""
    async with maker() as session:
        async with session.begin():
            yield session
    if after_commit is not None:
        after_commit()


@asynccontextmanager
async def snapshot(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A read-only transaction on one snapshot of `session`, for answers assembled from several
    queries (an application and its timeline must not be read either side of a projection)."""
    async with session.begin():
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        yield session


@asynccontextmanager
async def read_snapshot(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """`snapshot` on a new session from `maker`."""
    async with maker() as session, snapshot(session):
        yield session
