"""Intake end to end in one process: real PostgreSQL, real broker, the app's own lifespan
(outbox relay and status consumer running), driven over HTTP as a partner would. (The SSRF check
at registration: tests/integration/test_ssrf.py.)"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.intake.app import create_app
from shared.config.settings import Settings
from shared.contracts.envelope import new_event
from shared.contracts.topics import APPLICATIONS, ASSESSMENTS, AWARDS
from shared.db.engine import make_engine
from tests.support.apps import running
from tests.support.auth import OP, partner_headers
from tests.support.intake import PUBLIC_CALLBACK, counts, equity, fetch_until, new_partner
from tests.support.kafka import read_topic
from tests.support.policy import publish_sample_calls
from tests.support.records import FakeRecord
from tools.samples import ENTERPRISE, make_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        await publish_sample_calls(settings, c)
        yield c


async def test_healthz_answers_ok_when_database_and_broker_are_up(client: httpx.AsyncClient) -> None:
    r = await fetch_until(client, "/healthz", {}, lambda b: b.get("status") == "ok")
    assert r["checks"] == {"database": "ok", "broker": "ok"}


async def test_partner_creation_needs_the_operator_token(client: httpx.AsyncClient) -> None:
    body = {"name": "X", "callback_url": PUBLIC_CALLBACK}
    assert (await client.post("/v1/partners", json=body)).status_code == 401
    partner = await new_partner(client)
    r = await client.post("/v1/partners", json=body, headers=partner_headers(partner))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert partner["api_key"].startswith("glk_") and partner["webhook_secret"].startswith("whsec_")


async def test_partner_keys_are_stored_only_as_hashes(client: httpx.AsyncClient, settings: Settings) -> None:
    partner = await new_partner(client)
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT api_key_hash FROM partners WHERE id = :i"), {"i": partner["id"]}
            )
            dump = await conn.scalar(text("SELECT string_agg(t::text, '') FROM partners t"))
    finally:
        await engine.dispose()
    assert stored and len(stored) == 64
    assert partner["api_key"] not in (dump or "")


async def test_application_is_accepted_stored_and_published(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    partner = await new_partner(client)
    r = await client.post("/v1/applications", json=equity(), headers=partner_headers(partner, str(uuid.uuid4())))
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert (
        accepted["status"] == "received" and accepted["links"]["self"] == f"/v1/applications/{accepted['id']}"
    )
    got = (await client.get(accepted["links"]["self"], headers=partner_headers(partner))).json()
    assert got["status"] == "received"
    assert got["applicant"]["id"] == ENTERPRISE
    assert [e["type"] for e in got["timeline"]] == ["application.received"]
    published = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + APPLICATIONS,
                                 until=lambda got: any(orjson.loads(v)["subject"] == accepted["id"]
                                                       for _, v in got if v))
    envelopes = [orjson.loads(v) for _, v in published]
    mine = [e for e in envelopes if e["subject"] == accepted["id"]]
    assert len(mine) == 1
    assert mine[0]["type"] == "application.received"
    assert mine[0]["data"]["application"]["facts"]["financing_received"] == "80000000.00"
    assert {k for k, v in published if orjson.loads(v)["subject"] == accepted["id"]} == {ENTERPRISE.encode()}


async def test_same_key_same_body_gives_the_same_answer(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    partner = await new_partner(client)
    key = str(uuid.uuid4())
    body = equity("ROUND-IDEMP")
    first = await client.post("/v1/applications", json=body, headers=partner_headers(partner, key))
    reordered = orjson.loads(orjson.dumps(dict(reversed(list(body.items())))))
    before = await counts(settings)
    again = await client.post("/v1/applications", json=reordered, headers=partner_headers(partner, key))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await counts(settings) == before


async def test_same_key_other_body_is_a_conflict(client: httpx.AsyncClient, settings: Settings) -> None:
    partner = await new_partner(client)
    key = str(uuid.uuid4())
    assert (
        await client.post("/v1/applications", json=equity("A"), headers=partner_headers(partner, key))
    ).status_code == 202
    before = await counts(settings)
    r = await client.post("/v1/applications", json=equity("B"), headers=partner_headers(partner, key))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await counts(settings) == before


async def test_concurrent_requests_with_one_key_create_one_application(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    partner = await new_partner(client)
    key = str(uuid.uuid4())
    before = await counts(settings)
    replies = await asyncio.gather(
        *(client.post("/v1/applications", json=equity("RACE"), headers=partner_headers(partner, key)) for _ in range(8))
    )
    assert {r.status_code for r in replies} == {202}
    assert len({r.json()["id"] for r in replies}) == 1
    after = await counts(settings)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


async def test_the_same_key_is_independent_per_partner(client: httpx.AsyncClient) -> None:
    a, b = await new_partner(client, "A"), await new_partner(client, "B")
    key = "shared-key-" + uuid.uuid4().hex
    ra = await client.post("/v1/applications", json=equity("X"), headers=partner_headers(a, key))
    rb = await client.post("/v1/applications", json=equity("Y"), headers=partner_headers(b, key))
    assert ra.status_code == rb.status_code == 202
    assert ra.json()["id"] != rb.json()["id"]


def _mutate(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(equity())
    target = body
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[k]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return body


class _Deleted:
    def __repr__(self) -> str:  # a stable test id: parallel workers must collect the same names
        return "<deleted>"


_DELETE = _Deleted()

INVALID = [
    ("applicant.id", ENTERPRISE[:-1] + ("0" if ENTERPRISE[-1] != "0" else "1"), "applicant.id"),
    ("program", "NO-SUCH-PROGRAM", "program"),
    ("facts.financing_received", "80000000.001", "facts.financing_received"),
    ("facts.financing_received", "-1.00", "facts.financing_received"),
    ("facts.financing_received", 80000000.0, "facts.financing_received"),
    ("facts.event_date", "2024-02-30", "facts.event_date"),
    ("year", "2024", "year"),
    ("applicant.kind", "university", "applicant.kind"),
    ("facts.event_date", _DELETE, "facts.event_date"),
    ("requested_amount", "1.234", "requested_amount"),
    ("applicant.registered_in_shanghai", "yes", "applicant.registered_in_shanghai"),
]


@pytest.mark.parametrize(("path", "value", "field"), INVALID, ids=[f"{p}={v!r}" for p, v, _ in INVALID])
async def test_invalid_field_is_422_naming_it_and_nothing_is_stored(
    client: httpx.AsyncClient, settings: Settings, path: str, value: Any, field: str
) -> None:
    partner = await new_partner(client)
    before = await counts(settings)
    r = await client.post(
        "/v1/applications", json=_mutate(path, value), headers=partner_headers(partner, str(uuid.uuid4()))
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422 and problem["title"] and problem["type"]
    assert field in [e["field"] for e in problem["errors"]]
    assert await counts(settings) == before


async def test_malformed_json_is_400(client: httpx.AsyncClient, settings: Settings) -> None:
    partner = await new_partner(client)
    headers = {**partner_headers(partner, str(uuid.uuid4())), "Content-Type": "application/json"}
    r = await client.post("/v1/applications", content=b'{"program": "GT-EQUITY",', headers=headers)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    partner = await new_partner(client)
    body = equity(subject="S" * 70_000)
    r = await client.post("/v1/applications", json=body, headers=partner_headers(partner, str(uuid.uuid4())))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_missing_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    partner = await new_partner(client)
    r = await client.post("/v1/applications", json=equity(), headers=partner_headers(partner))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_unknown_api_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/applications",
        json=equity(),
        headers={"Authorization": "Bearer glk_nope", "Idempotency-Key": "k"},
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


async def test_partners_see_only_their_own_applications(client: httpx.AsyncClient) -> None:
    a, b = await new_partner(client, "A"), await new_partner(client, "B")
    app_a = (await client.post("/v1/applications", json=equity("A1"), headers=partner_headers(a, "k1"))).json()["id"]
    app_b = (await client.post("/v1/applications", json=equity("B1"), headers=partner_headers(b, "k1"))).json()["id"]
    assert (await client.get(f"/v1/applications/{app_a}", headers=partner_headers(b))).status_code == 404
    assert (await client.get(f"/v1/applications/{app_b}", headers=partner_headers(a))).status_code == 404
    listed_a = (await client.get("/v1/applications", headers=partner_headers(a))).json()["items"]
    assert [i["id"] for i in listed_a] == [app_a]
    operator_view = await client.get(f"/v1/applications/{app_a}", headers=OP)
    assert operator_view.status_code == 200


async def test_listing_is_newest_first_cursor_paged_and_filtered(client: httpx.AsyncClient) -> None:
    partner = await new_partner(client)
    ids = []
    for i in range(5):
        r = await client.post("/v1/applications", json=equity(f"R{i}"), headers=partner_headers(partner, f"page-{i}"))
        ids.append(r.json()["id"])
    pct = make_body("GT-PCT")
    pct_id = (await client.post("/v1/applications", json=pct, headers=partner_headers(partner, "pct"))).json()["id"]
    seen, cursor = [], None
    while True:
        params = {"limit": "2", "program": "GT-EQUITY", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/applications", params=params, headers=partner_headers(partner))).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert pct_id not in seen
    bad = await client.get("/v1/applications", params={"cursor": "!!"}, headers=partner_headers(partner))
    assert bad.status_code == 422
    wrong_status = await client.get("/v1/applications", params={"status": "paid"}, headers=partner_headers(partner))
    assert wrong_status.status_code == 422


async def test_programs_lists_the_catalog(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/programs")
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) == 16
    assert body["catalog_version"].startswith("sha256:")


async def test_downstream_events_move_status_and_timeline(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    partner = await new_partner(client)
    app_id = (await client.post("/v1/applications", json=equity("DS"), headers=partner_headers(partner, "ds"))).json()[
        "id"
    ]
    assessed = new_event(
        "application.assessed",
        source="grantline.eligibility",
        subject=app_id,
        data={"application_id": app_id, "eligible": True, "entitlement": "1600000.00", "reasons": []},
    )
    decided = new_event(
        "award.decided",
        source="grantline.ledger",
        subject=app_id,
        causation=assessed,
        data={
            "application_id": app_id,
            "status": "partially_approved",
            "entitlement": "1600000.00",
            "awarded": "400000.00",
            "limited_by": "GT-EQUITY/beneficiary-year",
            "reasons": [{"code": "CAP_PARTLY_USED", "message": "m", "citation": "000 §五(六)"}],
        },
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        ns = settings.topic_namespace
        # The decision is sent first, the assessment after: the status must still end right.
        await producer.send_and_wait(ns + AWARDS, decided.to_bytes(), key=ENTERPRISE.encode())
        await producer.send_and_wait(ns + ASSESSMENTS, assessed.to_bytes(), key=ENTERPRISE.encode())
        await producer.send_and_wait(ns + ASSESSMENTS, assessed.to_bytes(), key=ENTERPRISE.encode())
    finally:
        await producer.stop()
    got = await fetch_until(
        client, f"/v1/applications/{app_id}", partner_headers(partner), lambda b: len(b["timeline"]) == 3, timeout_s=30
    )
    assert got["status"] == "partially_approved"
    assert got["decision"]["awarded"] == "400000.00"
    assert got["decision"]["limited_by"] == "GT-EQUITY/beneficiary-year"
    assert sorted(e["type"] for e in got["timeline"]) == [
        "application.assessed",
        "application.received",
        "award.decided",
    ]


async def test_a_batch_of_downstream_events_projects_each_application_in_order(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    from services.intake.handlers import record_downstream_batch
    from shared.db.engine import make_sessionmaker
    from shared.messaging.consumer import ConsumerLoop, Subscription, batch_or_each

    partner = await new_partner(client)
    first, second = [
        (await client.post("/v1/applications", json=equity(f"BATCH-{k}"), headers=partner_headers(partner, k))).json()["id"]
        for k in (str(uuid.uuid4()), str(uuid.uuid4()))
    ]

    def assessed(app_id: str) -> Any:
        return new_event("application.assessed", source="grantline.eligibility", subject=app_id,
                         data={"application_id": app_id, "eligible": True, "entitlement": "1600000.00",
                               "reasons": []})

    def decided(app_id: str, status: str, awarded: str) -> Any:
        return new_event("award.decided", source="grantline.ledger", subject=app_id,
                         data={"application_id": app_id, "status": status, "entitlement": "1600000.00",
                               "awarded": awarded, "limited_by": None, "reasons": []})

    malformed = new_event("award.decided", source="grantline.ledger", subject=first,
                          data={"application_id": first, "status": "maybe"})
    unknown = decided("app_not_ours", "approved", "1.00")
    events = [assessed(first), assessed(second), malformed, decided(first, "approved", "1600000.00"),
              unknown, decided(second, "rejected", "0.00")]

    engine = make_engine(settings.database_url, "intake")
    loop = ConsumerLoop(
        service="intake",
        subscription=Subscription(name=f"status-{uuid.uuid4().hex[:6]}", topics=[AWARDS],
                                  handle=batch_or_each(record_downstream_batch)),
        maker=make_sessionmaker(engine), bootstrap=settings.kafka_bootstrap_servers,
    )
    await loop.process([FakeRecord(e.to_bytes(), 500 + i, topic=AWARDS) for i, e in enumerate(events)])  # type: ignore[arg-type]
    await engine.dispose()
    assert loop.stats.dead_lettered == 1
    one = (await client.get(f"/v1/applications/{first}", headers=partner_headers(partner))).json()
    two = (await client.get(f"/v1/applications/{second}", headers=partner_headers(partner))).json()
    assert (one["status"], one["decision"]["awarded"]) == ("approved", "1600000.00")
    assert (two["status"], two["decision"]["awarded"]) == ("rejected", "0.00")
    assert [e["type"] for e in one["timeline"]] == ["application.received", "application.assessed", "award.decided"]
    assert [e["type"] for e in two["timeline"]] == ["application.received", "application.assessed", "award.decided"]
