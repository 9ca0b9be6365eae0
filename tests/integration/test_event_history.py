"""`GET /v1/applications/{id}/events` on intake: every event that touched one application, across
services, in order, as full envelopes; operators and auditors see any, a partner only its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake.app import create_app
from shared.config.settings import Settings
from shared.contracts.envelope import new_event
from shared.contracts.topics import ANNOUNCEMENTS, ASSESSMENTS, AWARDS
from tests.support.apps import running
from tests.support.auth import AUD, OP, partner_headers
from tests.support.intake import equity, fetch_until, new_partner
from tests.support.policy import publish_sample_calls
from tools.samples import ENTERPRISE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        await publish_sample_calls(settings, c)
        yield c


async def test_the_event_history_of_an_application_in_order_with_full_envelopes(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    partner, other = await new_partner(client, "P1"), await new_partner(client, "P2")
    app_id = (await client.post("/v1/applications", json=equity("HIST"), headers=partner_headers(partner, "h1"))).json()["id"]
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    assessed = new_event("application.assessed", source="grantline.eligibility", subject=app_id, time=t0,
                         data={"application_id": app_id, "eligible": True, "entitlement": "1600000.00",
                               "reasons": [], "rules": [{"id": "r1", "passed": True}]})
    decided = new_event("award.decided", source="grantline.ledger", subject=app_id, causation=assessed,
                        time=t0 + timedelta(seconds=1),
                        data={"application_id": app_id, "status": "approved", "entitlement": "1600000.00",
                              "awarded": "1600000.00", "limited_by": None, "reasons": []})
    revoked = new_event("award.revoked", source="grantline.ledger", subject=app_id, causation=decided,
                        time=t0 + timedelta(seconds=2),
                        data={"application_id": app_id, "reason": "资料不实", "revoked_by": "operator:dashboard",
                              "amount": "1600000.00"})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        ns = settings.topic_namespace
        await producer.send_and_wait(ns + AWARDS, revoked.to_bytes(), key=ENTERPRISE.encode())
        await producer.send_and_wait(ns + ASSESSMENTS, assessed.to_bytes(), key=ENTERPRISE.encode())
        await producer.send_and_wait(ns + AWARDS, decided.to_bytes(), key=ENTERPRISE.encode())
        await producer.send_and_wait(ns + ANNOUNCEMENTS, b"not json", key=ENTERPRISE.encode())
    finally:
        await producer.stop()

    url = f"/v1/applications/{app_id}/events"
    body = await fetch_until(client, url, OP, lambda b: len(b.get("items", [])) == 4, timeout_s=30)
    items = body["items"]
    assert [e["type"] for e in items] == ["application.received", "application.assessed", "award.decided",
                                          "award.revoked"], "in event time order, whatever the arrival order"
    received = items[0]
    assert received["source"] == "grantline.intake" and received["data"]["application_id"] == app_id
    assert received["data"]["partner_id"] == partner["id"] and received["data"]["application"]["subject"] == "HIST"
    assert items[1] == assessed.to_wire() and items[2] == decided.to_wire() and items[3] == revoked.to_wire()
    assert items[2]["causation_id"] == str(assessed.id)

    assert (await client.get(url, headers=AUD)).json()["items"] == items
    assert (await client.get(url, headers=partner_headers(partner))).json()["items"] == items
    assert (await client.get(url, headers=partner_headers(other))).status_code == 404
    assert (await client.get(url)).status_code == 401
    assert (await client.get("/v1/applications/app_missing/events", headers=OP)).status_code == 404
