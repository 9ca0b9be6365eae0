"""Rate limiting per partner key (429 + Retry-After) and the Prometheus /metrics endpoint."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.intake.app import create_app
from shared.config.settings import Settings
from tests.support.apps import running
from tests.support.auth import partner_headers
from tests.support.intake import equity, fetch_until, new_partner
from tests.support.policy import publish_sample_calls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(update={"partner_rate_per_second": 1.0, "partner_burst": 3})
    async with running(create_app(limited)) as c:
        await publish_sample_calls(limited, c)
        yield c


async def test_a_partner_over_its_rate_gets_429_with_retry_after(client: httpx.AsyncClient) -> None:
    noisy, quiet = await new_partner(client, "noisy"), await new_partner(client, "quiet")
    codes = []
    for _ in range(5):
        r = await client.post("/v1/applications", json=equity(), headers=partner_headers(noisy, str(uuid.uuid4())))
        codes.append(r.status_code)
    assert codes[:3] == [202, 202, 202]
    assert codes[3:] == [429, 429]
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/problem+json")
    other = await client.post("/v1/applications", json=equity(), headers=partner_headers(quiet, str(uuid.uuid4())))
    assert other.status_code == 202  # one partner's flood does not starve another


async def test_metrics_expose_requests_outbox_and_consumers(client: httpx.AsyncClient) -> None:
    await fetch_until(client, "/healthz", {}, lambda b: b.get("status") == "ok")
    r = await client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert (
        'grantline_http_requests_total{method="POST",route="/v1/applications",service="intake",status="202"}'
        in text
    )
    assert (
        'grantline_http_requests_total{method="POST",route="/v1/applications",service="intake",status="429"}'
        in text
    )
    assert 'grantline_outbox_backlog{service="intake"}' in text
    assert 'grantline_consumer_lag{consumer="intake.status",service="intake"}' in text
    assert "grantline_rate_limited_total" in text
