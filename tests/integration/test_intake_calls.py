"""Intake under calls for applications (申报批次), with real PostgreSQL and broker: intake alone,
fed grantline.policy as eligibility publishes it. An application is accepted only while a call
for its program and year is open at receipt, is validated against the catalog version the call
pinned, and records the call; the replica of the policy is idempotent."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from services.intake.app import create_app
from services.intake.policy import handlers as policy_handlers
from shared.config.settings import Settings
from shared.contracts.topics import APPLICATIONS
from shared.db.engine import make_engine
from shared.policy.catalog import catalog_version_of
from tests.support.apps import running
from tests.support.auth import OP, partner_headers
from tests.support.intake import counts, equity, new_partner
from tests.support.intake import intake_scalar as scalar
from tests.support.kafka import read_topic
from tests.support.policy import (
    call_closed,
    call_opened,
    open_call_ids,
    publish_policy,
    shipped_document,
    wait_for_calls,
)
from tests.support.waiting import eventually
from tools.samples import make_body

pytestmark = pytest.mark.integration

# Each test uses program years of its own: calls for one program and year must not overlap.


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        yield c


async def post(client: httpx.AsyncClient, partner: dict[str, Any], body: dict[str, Any],
               key: str | None = None) -> httpx.Response:
    return await client.post("/v1/applications", json=body, headers=partner_headers(partner, key or str(uuid.uuid4())))


async def test_with_no_open_call_an_application_is_422_naming_year_and_nothing_is_stored(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # A call for 2024 only, and one for 2023 that has not opened yet.
    later = datetime.now(UTC) + timedelta(days=30)
    open_now = call_opened("GT-INSURANCE", 2024)
    await publish_policy(settings, [
        open_now,
        call_opened("GT-INSURANCE", 2023, opens_at=later.isoformat(), closes_at=(later + timedelta(days=1)).isoformat()),
    ])
    await wait_for_calls(client, {open_now.id})
    partner = await new_partner(client)
    assert (await post(client, partner, make_body("GT-INSURANCE"))).status_code == 202
    before = await counts(settings)
    for year in (2023, 2025):
        body = make_body("GT-INSURANCE", year=year)
        r = await post(client, partner, body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert {"field": "year", "message": f"no open call for GT-INSURANCE {year}"} in r.json()["errors"]
    # Other bad fields are named as well; a bad program or year is named as such, not as a missing call.
    r = await post(client, partner, make_body("GT-INSURANCE", facts={"premium": "x"}, year=2025))
    assert {e["field"] for e in r.json()["errors"]} == {"facts.premium", "year"}
    r = await post(client, partner, make_body("GT-INSURANCE", year="2025"))
    assert [e["field"] for e in r.json()["errors"]] == ["year"]
    assert await counts(settings) == before


async def test_an_application_under_an_open_call_records_the_call_everywhere(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    call = call_opened("GT-EQUITY", 2024, title="2024年度基因治疗企业股权融资资助", budget="50000000.00")
    await publish_policy(settings, [call])
    await wait_for_calls(client, {call.id})
    partner = await new_partner(client)
    r = await post(client, partner, equity("ROUND-CALL"))
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]

    got = (await client.get(f"/v1/applications/{app_id}", headers=partner_headers(partner))).json()
    assert got["call_id"] == call.id
    assert await scalar(settings, "SELECT call_id FROM applications WHERE id = :i", i=app_id) == call.id
    published = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + APPLICATIONS,
                                 until=lambda got: any(v and orjson.loads(v)["subject"] == app_id for _, v in got))
    [received] = [e for e in (orjson.loads(v) for _, v in published if v) if e["subject"] == app_id]
    assert received["data"]["call_id"] == call.id

    programs = (await client.get("/v1/programs")).json()
    [equity_program] = [p for p in programs["items"] if p["code"] == "GT-EQUITY"]
    [listed] = [c for c in equity_program["calls"] if c["id"] == call.id]
    assert {k: datetime.fromisoformat(listed.pop(k)) for k in ("opens_at", "closes_at")} == {
        "opens_at": datetime.fromisoformat(call.opens_at), "closes_at": datetime.fromisoformat(call.closes_at)}
    assert listed == {
        "id": call.id, "program": "GT-EQUITY", "year": 2024, "title": "2024年度基因治疗企业股权融资资助",
        "event_window": {"from": call.event_window.from_, "to": call.event_window.to},
        "catalog_version": call.catalog_version, "budget": "50000000.00",
    }


async def test_facts_are_validated_against_the_catalog_version_the_call_pinned(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # A successor version in which GT-PCT knows a fact the shipped one does not: a call under it
    # admits that fact, and the programs listing shows the newest version.
    document = copy.deepcopy(shipped_document())
    document["revision"] += 1
    [pct] = [p for p in document["programs"] if p["code"] == "GT-PCT"]
    pct["facts"]["agent_appointed"] = {"type": "bool", "required": True, "description": "a patent agent acts"}
    call = call_opened("GT-PCT", 2025, catalog_version=catalog_version_of(document))
    version = await publish_policy(settings, [call], document=document)
    await wait_for_calls(client, {call.id})
    programs = (await client.get("/v1/programs")).json()
    assert programs["catalog_version"] == version
    # The facts in the document's order (the replica keeps it as published).
    [listed] = [p for p in programs["items"] if p["code"] == "GT-PCT"]
    assert [f["name"] for f in listed["facts"]] == list(pct["facts"])

    partner = await new_partner(client)
    body = make_body("GT-PCT", year=2025, subject="PCT/CN2023/123456")
    missing = await post(client, partner, body)
    assert missing.status_code == 422 and [e["field"] for e in missing.json()["errors"]] == ["facts.agent_appointed"]
    body["facts"]["agent_appointed"] = True
    assert (await post(client, partner, body)).status_code == 202


async def test_a_call_closing_while_requests_arrive_admits_exactly_those_received_before_it_closes(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # First a call that stays open, so that the policy consumer is known to be running: the
    # closing call must be seen open before its end.
    running_call = call_opened("GT-PRODUCT", 2023)
    await publish_policy(settings, [running_call])
    await wait_for_calls(client, {running_call.id})
    closes_at = datetime.now(UTC) + timedelta(seconds=4)
    call = call_opened("GT-PRODUCT", 2024, closes_at=closes_at.isoformat())
    await publish_policy(settings, [call])
    await wait_for_calls(client, {call.id})
    partner = await new_partner(client)
    answers: list[tuple[float, float, httpx.Response]] = []  # (sent, answered) as epoch seconds

    async def one(i: int) -> None:
        sent = time.time()
        r = await post(client, partner, make_body("GT-PRODUCT", subject=f"CLOSE-{i}"))
        answers.append((sent, time.time(), r))

    i = 0
    while time.time() < closes_at.timestamp() + 1.0:
        await asyncio.gather(*(one(i + k) for k in range(4)))
        i += 4
        await asyncio.sleep(0.04)  # about 100 a second: under the partner's rate limit
    end = closes_at.timestamp()
    accepted = [(s, a, r) for s, a, r in answers if r.status_code == 202]
    refused = [(s, a, r) for s, a, r in answers if r.status_code == 422]
    assert len(accepted) + len(refused) == len(answers)
    assert accepted and refused
    # Answered before the end: accepted. Sent after it: refused, naming the year.
    assert all(r.status_code == 202 for _, a, r in answers if a < end)
    assert all(r.status_code == 422 for s, _, r in answers if s >= end)
    assert all(r.json()["errors"] == [{"field": "year", "message": "no open call for GT-PRODUCT 2024"}]
               for _, _, r in refused)
    # Accepted means received before closes_at: the time on its application.received.
    ids = [r.json()["id"] for _, _, r in accepted]
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            times = (await conn.execute(
                text("SELECT subject, envelope->>'time' FROM outbox WHERE subject = ANY(:ids)"), {"ids": ids}
            )).all()
            calls = set((await conn.scalars(
                text("SELECT call_id FROM applications WHERE id = ANY(:ids)"), {"ids": ids}
            )).all())
    finally:
        await engine.dispose()
    assert len(times) == len(ids) and calls == {call.id}
    assert all(datetime.fromisoformat(t) < closes_at for _, t in times)


async def test_a_call_closed_early_admits_nothing_once_intake_has_the_close(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    call = call_opened("CT-INSURANCE", 2023)
    await publish_policy(settings, [call])
    await wait_for_calls(client, {call.id})
    partner = await new_partner(client)
    key = str(uuid.uuid4())
    first = await post(client, partner, make_body("CT-INSURANCE"), key)
    assert first.status_code == 202

    await publish_policy(settings, [call_closed(call, datetime.now(UTC))])
    await wait_for_calls(client, {call.id}, is_open=False)
    r = await post(client, partner, make_body("CT-INSURANCE", subject="AFTER-CLOSE"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "year"
    # A retry of what was accepted before the close gets its first answer, not a 422.
    again = await post(client, partner, make_body("CT-INSURANCE"), key)
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    row = (await scalar(settings, "SELECT close_reason FROM calls WHERE id = :i", i=call.id))
    assert row == "closed by the test"


async def test_the_policy_replica_is_idempotent_and_dead_letters_a_close_for_an_unknown_call(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    call = call_opened("BIO-CDMO", 2023)
    # The same data again under new event ids (a re-publication, not a redelivery): one row each.
    await publish_policy(settings, [call])
    await publish_policy(settings, [call])
    await wait_for_calls(client, {call.id})
    unknown = call_opened("BIO-CDMO", 2022)
    dead_before = await scalar(settings, "SELECT count(*) FROM outbox WHERE type = 'event.dead_lettered'")
    await publish_policy(settings, [call_closed(unknown, datetime.now(UTC))])

    async def dead() -> int:
        return int(await scalar(settings, "SELECT count(*) FROM outbox WHERE type = 'event.dead_lettered'"))

    await eventually(dead, "the unknown call's close dead-lettered", until=lambda n: n == dead_before + 1)
    assert await scalar(settings, "SELECT count(*) FROM calls WHERE id = :i", i=call.id) == 1
    version = await scalar(settings, "SELECT count(*) FROM catalog_versions")
    await publish_policy(settings, [])
    await wait_for_calls(client, {call.id})
    assert await scalar(settings, "SELECT count(*) FROM catalog_versions") == version
    assert call.id in await open_call_ids(client)
    assert (await client.get("/v1/programs", headers=OP)).status_code == 200


async def test_every_intake_instance_admits_under_a_call_whichever_instance_consumed_it(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two instances share the consumer group: one of them applies each policy event, and the other
    # hears of it from the database, at once (the periodic reload is put out of the way).
    # Last in the module: the second instance leaving rebalances the group.
    monkeypatch.setattr(policy_handlers, "RELOAD_EVERY_SECONDS", 600.0)
    async with running(create_app(settings)) as second:
        calls = [call_opened(program, 2023) for program in ("BIO-DIGITAL", "BIO-UPGRADE", "BIO-FIRST-UNIT")]
        await publish_policy(settings, calls)
        for instance in (client, second):
            await wait_for_calls(instance, {c.id for c in calls})
        partner = await new_partner(client)
        for instance in (client, second):
            r = await post(instance, partner, make_body("BIO-DIGITAL", subject=f"TWO-{uuid.uuid4().hex[:6]}"))
            assert r.status_code == 202, r.text
