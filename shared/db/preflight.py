"""A console script's first question to the database: are the tables it needs there?

Asked before any work, so a tool pointed at the wrong database says so in one sentence instead
of failing deep inside with `relation "outbox" does not exist`.
"""

from __future__ import annotations

import asyncpg

from shared.db.engine import dsn_for


class SchemaMissing(Exception):
    """The sentence to show; the caller decides how to exit."""


async def require_tables(database_url: str, schema: str, tables: tuple[str, ...]) -> None:
    try:
        conn = await asyncpg.connect(dsn_for(database_url, driver=""), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise SchemaMissing(f"cannot connect to the database ({type(exc).__name__}: {exc}).") from None
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2)",
            schema,
            list(tables),
        )
    finally:
        await conn.close()
    missing = sorted(set(tables) - {r["table_name"] for r in rows})
    if missing:
        raise SchemaMissing(
            f"this database has no {schema}.{missing[0]} table: it is not a Grantline database, or its "
            f"migrations have not run (make up, or grantline-migrate)."
        )
