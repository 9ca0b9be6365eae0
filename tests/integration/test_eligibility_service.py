"""Eligibility as a service: it assesses what intake publishes, keeps the receipt, and answers
`POST /v1/evaluate` for partners (known through the replicated partner directory) and operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.eligibility.app import create_app as create_eligibility
from services.intake.app import create_app as create_intake
from shared.config.settings import Settings
from shared.db.engine import make_engine
from shared.kernel.uscc import with_check_character
from tests.support.apps import running
from tests.support.auth import AUD, OP, partner_headers
from tests.support.intake import fetch_until, new_partner
from tests.support.policy import open_sample_calls
from tests.support.records import FakeRecord
from tests.support.waiting import eventually
from tools.samples import make_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def apps(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        running(create_intake(settings)) as intake,
        running(create_eligibility(settings)) as eligibility,
    ):
        await open_sample_calls(eligibility, intake)  # applications are accepted only under an open call
        yield intake, eligibility


async def test_every_program_is_assessed_with_its_entitlement_in_the_timeline(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    intake, _ = apps
    partner = await new_partner(intake)
    expected = {
        "GT-EQUITY": "1600000.00",  # 2% of 8000万 (000 §五(六))
        "CT-INSURANCE": "50000.00",  # 50% of a 10万 premium (001 §四(四)11)
        "BIO-UPGRADE": "40000000.00",  # 10% of 4亿 (002 §五(二))
    }
    ids: dict[str, str] = {}
    for program in expected:
        r = await intake.post("/v1/applications", json=make_body(program), headers=partner_headers(partner, program))
        ids[program] = r.json()["id"]
    for program, app_id in ids.items():
        got = await fetch_until(
            intake,
            f"/v1/applications/{app_id}",
            partner_headers(partner),
            lambda b: any(e["type"] == "application.assessed" for e in b["timeline"]),
            timeout_s=30,
        )
        assert got["decision"]["entitlement"] == expected[program], program
    engine = make_engine(settings.database_url, "eligibility")
    try:
        async with engine.connect() as conn:
            receipts = (
                await conn.execute(
                    text("SELECT application_id, receipt FROM assessments WHERE application_id = ANY(:ids)"),
                    {"ids": list(ids.values())},
                )
            ).all()
            published = await conn.scalar(
                text(
                    "SELECT count(*) FROM outbox WHERE type = 'application.assessed' AND subject = ANY(:ids)"
                ),
                {"ids": list(ids.values())},
            )
    finally:
        await engine.dispose()
    assert len(receipts) == 3 and published == 3
    for _, receipt in receipts:
        assert receipt["catalog_version"].startswith("sha256:")
        assert all(rule["citation"] for rule in receipt["rules"])
        assert receipt["overlap"]["milestone"]


async def test_an_ineligible_application_becomes_ineligible_with_a_cited_reason(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    intake, _ = apps
    partner = await new_partner(intake)
    body = make_body("GT-EQUITY")
    body["facts"]["financing_received"] = "49999999.99"  # one fen below 5000万 (000 §五(六))
    app_id = (await intake.post("/v1/applications", json=body, headers=partner_headers(partner, "low"))).json()["id"]
    got = await fetch_until(
        intake, f"/v1/applications/{app_id}", partner_headers(partner), lambda b: b["status"] != "received",
        timeout_s=30,
    )
    assert got["status"] == "ineligible"
    reason = got["decision"]["reasons"][0]
    assert reason["code"] == "BELOW_THRESHOLD"
    assert reason["citation"].startswith("000")


async def _evaluate(client: httpx.AsyncClient, headers: dict[str, str], body: Any) -> httpx.Response:
    return await client.post("/v1/evaluate", json=body, headers=headers)


async def test_evaluate_answers_partners_and_operators_without_side_effects(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    intake, eligibility = apps
    partner = await new_partner(intake)
    body = make_body("GT-EQUITY")
    # The partner's key reaches eligibility as a replicated hash: wait for it.
    r = await eventually(lambda: _evaluate(eligibility, partner_headers(partner), body),
                         "the partner's key known to eligibility", timeout_s=20,
                         until=lambda r: r.status_code != 401)
    assert r.status_code == 200, r.text
    assert r.json()["eligible"] is True and r.json()["entitlement"] == "1600000.00"
    # The program and its review mode (POLICY.md: GT-EQUITY is paid by formula, GT-CLIN reviewed).
    assert (r.json()["program"], r.json()["review"]) == ("GT-EQUITY", "auto")
    clin = await _evaluate(eligibility, OP, make_body("GT-CLIN"))
    assert clin.status_code == 200, clin.text
    assert (clin.json()["program"], clin.json()["review"]) == ("GT-CLIN", "required")
    assert (await _evaluate(eligibility, OP, body)).status_code == 200
    assert (
        await _evaluate(eligibility, AUD, body)
    ).status_code == 403
    assert (await _evaluate(eligibility, {}, body)).status_code == 401
    engine = make_engine(settings.database_url, "eligibility")
    try:
        async with engine.connect() as conn:
            before = await conn.scalar(text("SELECT count(*) FROM assessments"))
            await _evaluate(eligibility, OP, make_body("GT-PCT"))
            after = await conn.scalar(text("SELECT count(*) FROM assessments"))
    finally:
        await engine.dispose()
    assert before == after


async def test_evaluate_names_invalid_fields(apps: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    _, eligibility = apps
    body = make_body("GT-EQUITY")
    body["facts"]["financing_received"] = "1.001"
    r = await _evaluate(eligibility, OP, body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "facts.financing_received"
    bad = await eligibility.post(
        "/v1/evaluate", content=b"{", headers={**OP, "content-type": "application/json"}
    )
    assert bad.status_code == 400


async def test_a_redriven_application_event_is_not_assessed_twice(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    from aiokafka import AIOKafkaProducer

    from shared.contracts.envelope import new_event
    from shared.contracts.topics import APPLICATIONS

    intake, _ = apps
    partner = await new_partner(intake)
    app_id = (
        await intake.post("/v1/applications", json=make_body("GT-EQUITY"), headers=partner_headers(partner, "rd"))
    ).json()["id"]
    await fetch_until(
        intake, f"/v1/applications/{app_id}", partner_headers(partner), lambda b: len(b["timeline"]) >= 2,
        timeout_s=30,
    )
    engine = make_engine(settings.database_url, "intake")
    async with engine.connect() as conn:
        original = await conn.scalar(
            text("SELECT envelope FROM outbox WHERE subject = :s AND type = 'application.received'"),
            {"s": app_id},
        )
    await engine.dispose()
    # The same application under a new event id (a re-drive from the outbox after a broker loss).
    copy = new_event("application.received", source="grantline.intake", subject=app_id, data=original["data"])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_namespace + APPLICATIONS, copy.to_bytes(), key=b"k")
    finally:
        await producer.stop()
    engine = make_engine(settings.database_url, "eligibility")
    async with engine.connect() as conn:
        # Wait until eligibility has consumed the copy (its inbox says so), then count.
        await eventually(lambda: conn.scalar(text("SELECT 1 FROM inbox WHERE event_id = :e"), {"e": copy.id}),
                         "the re-driven copy consumed", timeout_s=20)
        n = await conn.scalar(
            text("SELECT count(*) FROM outbox WHERE type = 'application.assessed' AND subject = :s"),
            {"s": app_id},
        )
    await engine.dispose()
    assert n == 1


async def test_a_batch_assesses_each_application_once_and_dead_letters_only_the_malformed_event(
    settings: Settings,
) -> None:
    import uuid

    from services.eligibility.handlers import assess_batch
    from shared.contracts.envelope import new_event
    from shared.contracts.topics import APPLICATIONS, DLQ
    from shared.db.engine import make_sessionmaker
    from shared.db.migrate import upgrade
    from shared.messaging.consumer import ConsumerLoop, Subscription, batch_or_each

    schema = "elig_batch"
    upgrade(settings.database_url, "eligibility", schema=schema)
    engine = make_engine(settings.database_url, schema)
    loop = ConsumerLoop(
        service="eligibility",
        subscription=Subscription(name="assess", topics=[APPLICATIONS],
                                  handle=batch_or_each(assess_batch)),
        maker=make_sessionmaker(engine), bootstrap=settings.kafka_bootstrap_servers,
    )

    def received(app_id: str, body: dict[str, Any]) -> Any:
        from shared.policy.catalog import load_catalog
        from shared.policy.validation import validate_application

        application, errors = validate_application(body, load_catalog())
        assert application is not None, errors
        return new_event("application.received", source="tests", subject=app_id,
                         data={"application_id": app_id, "partner_id": "ptn_t", "application": application.to_wire()})

    tag = uuid.uuid4().hex[:8]
    a, b = f"app_{tag}_a", f"app_{tag}_b"
    first = received(a, make_body("GT-EQUITY"))
    copy = new_event("application.received", source="tests", subject=a, data=first.data)  # a re-driven copy
    malformed = new_event("application.received", source="tests", subject="x", data={"application_id": 7})
    second = received(b, make_body("GT-PCT"))

    events = [first, malformed, copy, second]
    await loop.process([FakeRecord(e.to_bytes(), i) for i, e in enumerate(events)])  # type: ignore[arg-type]
    async with engine.connect() as conn:
        assessed = (await conn.execute(text(
            "SELECT subject, envelope->>'causation_id' FROM outbox WHERE type = 'application.assessed' ORDER BY seq"
        ))).all()
        stored = (await conn.execute(text("SELECT application_id, received_event_id FROM assessments "
                                          "ORDER BY application_id"))).all()
        dead = (await conn.execute(text("SELECT envelope FROM outbox WHERE topic = :t"), {"t": DLQ})).all()
    await engine.dispose()
    assert [tuple(r) for r in assessed] == [(a, str(first.id)), (b, str(second.id))]
    assert [tuple(r) for r in stored] == [(a, first.id), (b, second.id)]
    assert [d.envelope["data"]["offset"] for d in dead] == [1]


async def test_a_beijing_code_declaring_shanghai_is_ineligible_by_the_code_itself(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """002 §一(三) asks for a Shanghai-registered applicant: characters 3-8 of the code (110108,
    Beijing Haidian) decide it, whatever `registered_in_shanghai` says."""
    intake, _ = apps
    partner = await new_partner(intake)
    beijing = with_check_character("91110108MA01ABCD1")
    body = make_body("GT-EQUITY", applicant={"id": beijing, "registered_in_shanghai": True})
    r = await intake.post("/v1/applications", json=body, headers=partner_headers(partner, "beijing"))
    assert r.status_code == 202, r.text
    got = await fetch_until(
        intake,
        f"/v1/applications/{r.json()['id']}",
        partner_headers(partner),
        lambda b: b["status"] != "received",
        timeout_s=30,
    )
    assert got["status"] == "ineligible"
    failed = [reason for reason in got["decision"]["reasons"] if reason["code"] == "RULE_FAILED"]
    assert failed and all("002 §一(三)" in reason["citation"] for reason in failed), got["decision"]["reasons"]
