"""Do a service's declared tables (its `models` module) match what its migrations build?

Alembic's autogenerate comparison, run against a scratch schema migrated to head: an empty
list means the SQLModel classes and the migration scripts describe the same tables.
"""

from __future__ import annotations

import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.engine import dsn_for
from shared.db.migrate import upgrade


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Alembic's own bookkeeping table is not the service's.
    return not (type_ == "table" and name == "alembic_version")


def _compare(conn: Connection, schema: str, metadata: MetaData) -> list[Any]:
    conn.execute(text(f'SET search_path TO "{schema}"'))
    context = MigrationContext.configure(conn, opts={"include_object": _include, "compare_type": True})
    return list(compare_metadata(context, metadata))


async def model_differences(database_url: str, service: str, metadata: MetaData) -> list[Any]:
    """Autogenerate's differences between `metadata` and `service`'s migrations at head."""
    schema = f"models_{service}_{uuid.uuid4().hex[:8]}"
    upgrade(database_url, service, schema)
    engine = create_async_engine(dsn_for(database_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_compare, schema, metadata)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
