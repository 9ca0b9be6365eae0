"""End-to-end: the four services as processes, over HTTP and Kafka, as partners use them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.db.migrate import upgrade_all
from shared.messaging.topics import ensure_topics
from tests.support.processes import Stack, make_stack
from tests.support.servers import create_database, new_namespace

OPERATOR_TOKEN = "e2e-operator-token-0123456789"
AUDITOR_TOKEN = "e2e-auditor-token-0123456789"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def stack(pg_admin_dsn: str, kafka_bootstrap: str) -> Iterator[Stack]:
    db = create_database(pg_admin_dsn)
    upgrade_all(db)
    namespace = new_namespace("e2e")
    asyncio.run(ensure_topics(kafka_bootstrap, partitions=3, namespace=namespace))
    stack = make_stack(
        {
            "DATABASE_URL": db,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "GRANTLINE_ENV": "test",
            "GRANTLINE_TOPIC_NAMESPACE": namespace,
            "GRANTLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "GRANTLINE_AUDITOR_TOKEN": AUDITOR_TOKEN,
            "GRANTLINE_WEBHOOK_SIGNING_KEY": "e2e-signing-key-0123456789",
            "GRANTLINE_ALLOW_PRIVATE_CALLBACKS": "1",
            "GRANTLINE_NOTICE_PERIOD_SECONDS": "3",
            "GRANTLINE_WEBHOOK_BACKOFF_SECONDS": "0.1",
            "GRANTLINE_WEBHOOK_ATTEMPTS_MAX": "3",
            "GRANTLINE_RELAY_POLL_SECONDS": "0.1",
            "GRANTLINE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        },
        ARTIFACTS / f"e2e-logs-{namespace.rstrip('.')}",
    )
    for name in stack.services:
        stack.start(name)
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop_all()
