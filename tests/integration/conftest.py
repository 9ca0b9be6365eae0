"""Per-module database and settings against the real servers, for service apps run in process
(tests/support/apps.py runs them)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config.settings import Settings
from shared.db.engine import make_engine
from shared.db.migrate import upgrade_all
from shared.messaging.topics import ensure_topics
from tests.support.auth import AUDITOR_TOKEN, OPERATOR_TOKEN
from tests.support.servers import create_database


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


@pytest.fixture(scope="module")
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer (Tansu has no idempotent producers) for tests that publish events by hand."""
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="module")
async def notify_db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the module database's notify schema, for reading notify's rows."""
    engine = make_engine(settings.database_url, "notify")
    yield engine
    await engine.dispose()
