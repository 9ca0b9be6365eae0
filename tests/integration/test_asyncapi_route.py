"""GET /asyncapi.json on the four running services: public, the generated document, valid AsyncAPI
3.0.0; and what the services really wrote to their outboxes through one application's life (a
partner, the shipped catalog, a call, the application, its assessment and decision) is each in a
`send` operation of its writer's served document and validates against that message's payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from shared.config.settings import Settings
from shared.contracts.asyncapi import SERVICES, asyncapi_document
from shared.db.engine import make_engine
from tests.support.apps import running_services
from tests.support.asyncapi import asyncapi_errors, payload_errors
from tests.support.auth import partner_headers
from tests.support.intake import equity, new_partner
from tests.support.policy import open_call, wait_for_calls
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with running_services(settings.model_copy(update={"allow_private_callbacks": True})) as clients:
        yield clients


async def outbox(settings: Settings, service: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, type, envelope) of every row in `service`'s outbox, in order."""
    engine = make_engine(settings.database_url, service)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT topic, type, envelope FROM outbox ORDER BY seq"))
            return [(row.topic, row.type, row.envelope) for row in rows]
    finally:
        await engine.dispose()


async def test_each_service_serves_its_document_publicly(stack: dict[str, httpx.AsyncClient]) -> None:
    for name in SERVICES:
        r = await stack[name].get("/asyncapi.json")  # no credentials, as /openapi.json
        assert r.status_code == 200, (name, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        document = r.json()
        assert document == orjson.loads(orjson.dumps(asyncapi_document(name)))
        assert document["info"]["title"] == f"Grantline {name} events"
        assert asyncapi_errors(document) == [], name


async def test_what_the_services_wrote_is_in_their_documents(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    intake, eligibility = stack["intake"], stack["eligibility"]
    partner = await new_partner(intake, "AsyncAPI partner")
    body = equity("ASYNCAPI-1")
    call = await open_call(eligibility, body["program"], body["year"])
    await wait_for_calls(intake, {call["id"]})
    r = await intake.post("/v1/applications", json=body, headers=partner_headers(partner, "asyncapi-1"))
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]

    async def ledger_decided() -> list[tuple[str, str, dict[str, Any]]]:
        return [row for row in await outbox(settings, "ledger") if row[1] == "award.decided"]

    await eventually(ledger_decided, "the ledger decided", timeout_s=30, until=lambda rows: len(rows) > 0)

    documents = {name: (await stack[name].get("/asyncapi.json")).json() for name in SERVICES}
    checked: set[str] = set()
    for name in SERVICES:
        document = documents[name]
        sent = {
            (document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"], m["$ref"].rsplit("/", 1)[1])
            for op in document["operations"].values() if op["action"] == "send"
            for m in op["messages"]
        }
        for topic, event_type, envelope in await outbox(settings, name):
            assert (topic, event_type) in sent, f"{name} wrote {event_type} on {topic}, not in its document"
            payload = document["components"]["messages"][event_type]["payload"]
            assert payload_errors(document, payload, envelope) == [], (name, event_type)
            checked.add(event_type)
    assert {"partner.registered", "catalog.published", "call.opened", "application.received",
            "application.assessed", "award.decided"} <= checked, checked
    assert any(row[2]["subject"] == app_id for row in await ledger_decided())
