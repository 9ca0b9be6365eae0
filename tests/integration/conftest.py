"""Per-module database and settings against the real servers, for service apps run in process
(tests/support/apps.py runs them)."""

from __future__ import annotations

import secrets

import pytest

from shared.config.settings import Settings
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
