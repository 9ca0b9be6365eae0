"""Notify counts every webhook attempt by outcome at /metrics (grantline_webhook_attempts_total),
the same outcome it records in delivery_attempts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.app import create_app
from shared.config.settings import Settings
from shared.contracts.topics import AWARDS
from shared.db.engine import make_engine
from tests.support.apps import running
from tests.support.kafka import publish
from tests.support.notify import decided, register_partner
from tests.support.receiver import scripted_receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def attempts(metrics_text: str) -> dict[str, float]:
    """outcome → grantline_webhook_attempts_total (the registry is per process: compare deltas)."""
    found = re.findall(r'^grantline_webhook_attempts_total\{outcome="(\w+)"\} (\S+)$', metrics_text, re.M)
    return {outcome: float(value) for outcome, value in found}


@pytest.fixture(scope="module")
def metric_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allow_private_callbacks": True, "webhook_backoff_seconds": 0.05, "webhook_attempts_max": 3}
    )


@pytest.fixture(scope="module")
async def engine(metric_settings: Settings) -> AsyncIterator[AsyncEngine]:
    e = make_engine(metric_settings.database_url, "notify")
    yield e
    await e.dispose()


async def test_webhook_attempts_are_counted_by_outcome(metric_settings: Settings, engine: AsyncEngine) -> None:
    s = metric_settings
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        async with running(create_app(s, webhook_timeout=1.0)) as notify, scripted_receiver(
            lambda n: 500 if n == 1 else 204
        ) as hook:
            before = attempts((await notify.get("/metrics")).text)
            partner = await register_partner(producer, s, engine, hook.url)
            event, key = decided(partner, status="rejected", awarded="0.00")
            await publish(producer, s, AWARDS, event, key)

            async def recorded() -> list[str]:
                async with engine.connect() as conn:
                    rows = await conn.execute(
                        text(
                            "SELECT a.outcome FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
                            "WHERE d.event_id = :e ORDER BY a.attempt"
                        ),
                        {"e": event.id},
                    )
                    outcomes = [r[0] for r in rows]
                return outcomes if "delivered" in outcomes else []

            outcomes = await eventually(recorded, timeout_s=20, what="the webhook delivered after one failure")
            assert outcomes == ["failed", "delivered"]

            page = await notify.get("/metrics")
            assert page.status_code == 200
            assert "# TYPE grantline_webhook_attempts_total counter" in page.text
            after = attempts(page.text)
            assert after.get("failed", 0) - before.get("failed", 0) >= 1
            assert after.get("delivered", 0) - before.get("delivered", 0) >= 1
    finally:
        await producer.stop()
