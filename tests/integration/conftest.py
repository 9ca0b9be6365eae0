"""Per-module database, settings and in-process service apps against the real servers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config.settings import Settings
from shared.db.migrate import upgrade_all
from shared.messaging.topics import ensure_topics
from tests.support.servers import create_database

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
AUDITOR_TOKEN = "auditor-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def db_url(pg_admin_dsn: str) -> str:
    url = create_database(pg_admin_dsn)
    upgrade_all(url)
    return url


@pytest.fixture(scope="module")
async def settings(db_url: str, kafka_bootstrap: str) -> Settings:
    namespace = f"t{secrets.token_hex(4)}."
    await ensure_topics(kafka_bootstrap, partitions=3, namespace=namespace)
    return Settings(
        env="test",
        database_url=db_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        operator_token=OPERATOR_TOKEN,
        auditor_token=AUDITOR_TOKEN,
        webhook_signing_key="signing-key-for-tests-0123456789",
        relay_poll_seconds=0.05,
        topic_namespace=namespace,
        topic_partitions=3,
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (relay, consumers) and talk to it over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


AppFactory = Callable[[Settings], FastAPI]


class RoutesOnly(SimpleNamespace):
    """The part of a ServiceContext that routes use (settings, sessions, units of work,
    snapshots), for driving routes without the lifespan's relay and consumers."""

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        async with self.maker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        async with self.maker() as session, session.begin():
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            yield session
