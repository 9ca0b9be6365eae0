"""Database access: one async engine per service, pinned to that service's schema.

Each connection's search_path is the service's schema, so the same table classes and the
same code run against the live schema or a scratch one (replay) without change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def dsn_for(url: str, driver: str = "asyncpg") -> str:
    """postgresql://… (any driver) → postgresql+<driver>://…; driver '' gives the plain libpq form."""
    parts = urlsplit(url)
    scheme = "postgresql" if not driver else f"postgresql+{driver}"
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def dsn_with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def make_engine(database_url: str, schema: str, *, pool_size: int = 20) -> AsyncEngine:
    # No pre-ping: it costs a round trip per checkout. After a database restart the first use
    # of a stale connection fails once as a transient error, and SQLAlchemy then recycles the
    # whole pool; callers retry transient errors anyway.
    return create_async_engine(
        dsn_for(database_url),
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_recycle=1800,
        connect_args={"server_settings": {"search_path": schema, "application_name": f"grantline-{schema}"}},
        # A statement's error names its SQL, never its values: they hold account numbers (payees)
        # and personal data, and errors are logged.
        hide_parameters=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with maker() as session:
        async with session.begin():
            yield session


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers a trivial query (the health check)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
