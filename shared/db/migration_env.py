"""The body of every service's Alembic env.py: async, one schema, one version table in it.

The schema comes from the Alembic config (so replay can migrate a scratch schema with the
very same scripts); every statement runs with search_path set to it. A run that migrates the
service's own schema ends by granting the service's role its privileges on it (shared.db.roles),
in the migration's transaction: whatever path migrates (make up, the tests, the bench, a deploy
job), the grants match the tables. A scratch schema grants nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.engine import dsn_for
from shared.db.roles import DEFAULT_PREFIX, Roles, apply_grants


def _run_sync(connection: Connection, schema: str, grant_to: str | None, append_only: tuple[str, ...]) -> None:
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.execute(text(f'SET search_path TO "{schema}"'))
    connection.commit()
    context.configure(connection=connection, version_table_schema=schema, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
        if grant_to is not None:
            apply_grants(connection, schema, grant_to, append_only)


async def _run(url: str, schema: str, grant_to: str | None, append_only: tuple[str, ...]) -> None:
    engine = create_async_engine(dsn_for(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync, schema, grant_to, append_only)
    await engine.dispose()


def run(default_schema: str, append_only: tuple[str, ...] = ()) -> None:
    """Migrate (the config's schema, else `default_schema`) to head. `append_only`: the service's
    tables its role may only INSERT and SELECT (every outbox is, besides)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    schema = config.attributes.get("schema") or default_schema
    # The service's role is named after its schema; a scratch schema (replay, model checks) is no
    # service's, and its creator keeps it to itself.
    prefix = config.attributes.get("role_prefix") or DEFAULT_PREFIX
    grant_to = Roles(prefix).service(default_schema) if schema == default_schema else None
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")
    if context.is_offline_mode():
        raise RuntimeError("offline migrations are not supported")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run(url, schema, grant_to, append_only))
        return
    # Called from async code (tests, replay): migrate on a thread with its own loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _run(url, schema, grant_to, append_only)).result()
