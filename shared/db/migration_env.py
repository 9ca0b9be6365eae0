"""The body of every service's Alembic env.py: async, one schema, one version table in it.

The schema comes from the Alembic config (so replay can migrate a scratch schema with the
very same scripts); every statement runs with search_path set to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.engine import dsn_for


def _run_sync(connection: Connection, schema: str) -> None:
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.execute(text(f'SET search_path TO "{schema}"'))
    connection.commit()
    context.configure(connection=connection, version_table_schema=schema, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def _run(url: str, schema: str) -> None:
    engine = create_async_engine(dsn_for(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync, schema)
    await engine.dispose()


def run(default_schema: str) -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    schema = config.attributes.get("schema") or default_schema
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")
    if context.is_offline_mode():
        raise RuntimeError("offline migrations are not supported")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run(url, schema))
        return
    # Called from async code (tests, replay): migrate on a thread with its own loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _run(url, schema)).result()
