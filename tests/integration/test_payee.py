"""The payee on intake (CONTRACT.md, "Intake": `payee`, PUT payee, the `payment` block), over real
PostgreSQL and a real broker: submitted with or without one, every bad field a 422 naming it,
replaced by its partner (payee.updated on grantline.applications with the full number) until the
ledger's payment.sent reaches intake's projection (409 after), the `payment` block and timeline
following the payment steps, and the account number masked in every answer and log line a
partner or an auditor sees (payment officers see it in full)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.intake.app import create_app
from services.intake.domain import ApplicationState, project
from services.intake.payees.domain import mask_account, validate_payee
from shared.config.settings import Settings
from shared.contracts.events import PaymentSent
from shared.contracts.topics import APPLICATIONS, PAYMENTS
from shared.db.engine import make_engine
from tests.support.apps import running
from tests.support.auth import AUD, OP, partner_headers
from tests.support.intake import equity, fetch_until, intake_scalar, new_partner
from tests.support.kafka import publish, read_topic
from tests.support.payee import account_number, masked, order_id, payee, payment_step, records_holding
from tests.support.policy import publish_sample_calls
from tools.samples import ENTERPRISE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        await publish_sample_calls(settings, c)
        yield c


async def submit(client: httpx.AsyncClient, partner: dict[str, Any], subject: str, **over: Any) -> httpx.Response:
    return await client.post("/v1/applications", json=equity(subject, **over),
                             headers=partner_headers(partner, f"k-{subject}"))


async def outbox_data(settings: Settings, app_id: str, event_type: str) -> list[dict[str, Any]]:
    raw = await intake_scalar(
        settings, "SELECT coalesce(json_agg(envelope->'data' ORDER BY seq), '[]') FROM outbox "
        "WHERE subject = :a AND type = :t", a=app_id, t=event_type)
    return list(raw if isinstance(raw, list) else orjson.loads(raw))


# -- submission ------------------------------------------------------------------------------


async def test_an_application_without_a_payee_has_none(client: httpx.AsyncClient, settings: Settings) -> None:
    partner = await new_partner(client, "NoPayee")
    r = await submit(client, partner, "NO-PAYEE-1")
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]
    body = (await client.get(f"/v1/applications/{app_id}", headers=partner_headers(partner))).json()
    assert body["payee"] is None and body["payment"] is None
    [received] = await outbox_data(settings, app_id, "application.received")
    assert "payee" not in received, "absent on the wire, never null"
    # A null payee is no payee.
    nulled = await submit(client, partner, "NO-PAYEE-2", payee=None)
    assert nulled.status_code == 202, nulled.text
    [received] = await outbox_data(settings, nulled.json()["id"], "application.received")
    assert "payee" not in received


async def test_a_payee_given_with_the_application_travels_in_full_and_is_shown_masked(
    client: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    partner = await new_partner(client, "WithPayee")
    number = account_number()
    given = payee(number)
    r = await submit(client, partner, "WITH-PAYEE-1", payee=given)
    assert r.status_code == 202, r.text
    assert number not in r.text
    app_id = r.json()["id"]
    url = f"/v1/applications/{app_id}"
    headers = partner_headers(partner)

    # The event the ledger pays from carries it in full, and reaches the broker so.
    [received] = await outbox_data(settings, app_id, "application.received")
    assert received["payee"] == given
    messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + APPLICATIONS,
                                until=lambda got: any(v and app_id.encode() in v for _, v in got))
    [on_wire] = [orjson.loads(v) for k, v in messages if v and app_id.encode() in v]
    assert on_wire["data"]["payee"] == given

    # The partner (its own payee), an auditor: masked in the application, the list and the history.
    shown = {**given, "account_number": masked(number)}
    for who in (headers, AUD):
        one = await client.get(url, headers=who)
        assert one.json()["payee"] == shown
        listed = await client.get("/v1/applications", headers=who, params={"limit": 200})
        assert [a["payee"] for a in listed.json()["items"] if a["id"] == app_id] == [shown]
        history = await client.get(f"{url}/events", headers=who)
        [event] = [e for e in history.json()["items"] if e["type"] == "application.received"]
        assert event["data"]["payee"] == shown
        for answer in (one, listed, history):
            assert number not in answer.text, answer.request.url
    # A payment officer (the bootstrap operator holds the role) sees the number it pays to.
    assert (await client.get(url, headers=OP)).json()["payee"] == given
    history = (await client.get(f"{url}/events", headers=OP)).json()["items"]
    assert [e["data"]["payee"] for e in history if e["type"] == "application.received"] == [given]

    # A retry with the same key and body answers the first reply; with another payee, 409.
    again = await submit(client, partner, "WITH-PAYEE-1", payee=given)
    assert again.status_code == 202 and again.json()["id"] == app_id
    other = await submit(client, partner, "WITH-PAYEE-1", payee=payee())
    assert other.status_code == 409
    assert records_holding(caplog.records, number) == []


def _bad_payees() -> list[tuple[str, Any, str]]:
    """(case id, the payee sent, the field the 422 must name)."""
    ok = payee("31050161393600000123")
    cases: list[tuple[str, Any, str]] = [
        ("not-an-object", "31050161393600000123", "payee"),
        ("a-list", [ok], "payee"),
        ("unknown-key", {**ok, "iban": "x"}, "payee.iban"),
    ]
    for key in ("account_name", "account_number", "bank_code"):
        cases.append((f"no-{key}", {k: v for k, v in ok.items() if k != key}, f"payee.{key}"))
        cases.append((f"{key}-a-number", {**ok, key: 31050161}, f"payee.{key}"))
        cases.append((f"{key}-null", {**ok, key: None}, f"payee.{key}"))
    cases += [
        ("name-empty", {**ok, "account_name": ""}, "payee.account_name"),
        ("name-blank", {**ok, "account_name": "   "}, "payee.account_name"),
        ("name-over-140", {**ok, "account_name": "某" * 141}, "payee.account_name"),
        ("name-control", {**ok, "account_name": "上海\x00某某"}, "payee.account_name"),
        ("number-letters", {**ok, "account_number": "3105016139360000012X"}, "payee.account_number"),
        ("number-spaces", {**ok, "account_number": "3105 0161 3936 0000 0123"}, "payee.account_number"),
        ("number-dashes", {**ok, "account_number": "3105-0161-3936"}, "payee.account_number"),
        ("number-fullwidth", {**ok, "account_number": "３１０５０１６１３９３６"}, "payee.account_number"),
        ("number-5-digits", {**ok, "account_number": "12345"}, "payee.account_number"),
        ("number-33-digits", {**ok, "account_number": "1" * 33}, "payee.account_number"),
        ("number-zeros", {**ok, "account_number": "00000000"}, "payee.account_number"),
        ("number-empty", {**ok, "account_number": ""}, "payee.account_number"),
        ("bank-11-digits", {**ok, "bank_code": "10529006101"}, "payee.bank_code"),
        ("bank-13-digits", {**ok, "bank_code": "1052900610123"}, "payee.bank_code"),
        ("bank-letters", {**ok, "bank_code": "10529006101A"}, "payee.bank_code"),
        ("bank-spaces", {**ok, "bank_code": "105 290 061 012"}, "payee.bank_code"),
    ]
    return cases


@pytest.mark.parametrize(("payee_sent", "field"), [(p, f) for _, p, f in _bad_payees()],
                         ids=[c for c, _, _ in _bad_payees()])
async def test_every_bad_payee_field_is_a_422_naming_it_and_nothing_is_stored(
    client: httpx.AsyncClient, settings: Settings, payee_sent: Any, field: str
) -> None:
    partner = await new_partner(client, "BadPayee")
    r = await submit(client, partner, "BAD-PAYEE", payee=payee_sent)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert "31050161393600000123" not in r.text, "a problem never repeats the account number"
    stored = await intake_scalar(settings, "SELECT count(*) FROM applications WHERE partner_id = :p",
                                 p=partner["id"])
    assert stored == 0


async def test_payee_errors_come_with_the_applications_own(client: httpx.AsyncClient) -> None:
    partner = await new_partner(client, "BothBad")
    r = await submit(client, partner, "BOTH-BAD", payee=payee(bank_code="1"), facts={"event_date": "x"})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert "payee.bank_code" in fields and any(f.startswith("facts.") for f in fields)


def test_validation_and_masks_without_a_server() -> None:
    # The longest and shortest numbers pass; masks show the last four only.
    assert validate_payee(payee("1" * 32))[0] is not None
    assert validate_payee(payee("123456"))[0] is not None
    assert validate_payee(payee("1" * 32), at="")[1] == []
    assert [e.field for e in validate_payee({**payee(), "bank_code": "x"}, at="")[1]] == ["bank_code"]
    assert mask_account("31050161393600000123") == "****0123"
    assert mask_account("1234") == "****"


# -- PUT payee -------------------------------------------------------------------------------


async def test_the_owning_partner_replaces_the_payee_and_payee_updated_carries_it_in_full(
    client: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    partner, other = await new_partner(client, "Owner"), await new_partner(client, "Other")
    app_id = (await submit(client, partner, "PUT-PAYEE-1")).json()["id"]
    url = f"/v1/applications/{app_id}"
    number = account_number(19)
    new = payee(number, account_name="上海某某生物科技有限公司（基本户）")

    r = await client.put(f"{url}/payee", json=new, headers=partner_headers(partner))
    assert r.status_code == 200, r.text
    assert r.json()["payee"] == {**new, "account_number": masked(number)} and r.json()["changed"] is True
    assert number not in r.text

    # payee.updated: in the outbox and on grantline.applications, keyed by the applicant, in full.
    [data] = await outbox_data(settings, app_id, "payee.updated")
    assert data["payee"] == new and data["application_id"] == app_id and data["partner_id"] == partner["id"]
    assert data["applicant_id"] == ENTERPRISE
    messages = await read_topic(
        settings.kafka_bootstrap_servers, settings.topic_namespace + APPLICATIONS,
        until=lambda got: any(v and b"payee.updated" in v and app_id.encode() in v for _, v in got))
    [(key, on_wire)] = [(k, orjson.loads(v)) for k, v in messages
                        if v and b"payee.updated" in v and app_id.encode() in v]
    assert key == ENTERPRISE.encode() and on_wire["data"]["payee"] == new

    # Shown masked, in the timeline and the event history (the payment officer: in full).
    body = (await client.get(url, headers=partner_headers(partner))).json()
    assert body["payee"] == {**new, "account_number": masked(number)}
    assert [e["type"] for e in body["timeline"]] == ["application.received", "payee.updated"]
    history = await client.get(f"{url}/events", headers=partner_headers(partner))
    assert number not in history.text
    assert [e["data"]["payee"]["account_number"] for e in history.json()["items"]
            if e["type"] == "payee.updated"] == [masked(number)]
    assert (await client.get(url, headers=OP)).json()["payee"] == new

    # The same payee again changes nothing and publishes nothing.
    same = await client.put(f"{url}/payee", json=new, headers=partner_headers(partner))
    assert same.status_code == 200 and same.json()["changed"] is False
    assert len(await outbox_data(settings, app_id, "payee.updated")) == 1

    # Another partner: 404, as for an application that does not exist; staff may not: 403.
    stranger = await client.put(f"{url}/payee", json=payee(), headers=partner_headers(other))
    assert stranger.status_code == 404
    assert (await client.put("/v1/applications/app_nope/payee", json=payee(),
                             headers=partner_headers(partner))).status_code == 404
    assert (await client.put(f"{url}/payee", json=payee(), headers=OP)).status_code == 403
    assert (await client.put(f"{url}/payee", json=payee())).status_code == 401
    # A bad body names the field as the body has it, and changes nothing.
    bad = await client.put(f"{url}/payee", json={**payee(), "bank_code": "12"}, headers=partner_headers(partner))
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["bank_code"]
    malformed = await client.put(f"{url}/payee", content=b"{", headers={
        **partner_headers(partner), "Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert (await client.get(url, headers=OP)).json()["payee"] == new
    assert records_holding(caplog.records, number) == []


# -- the payment block, from grantline.payments ----------------------------------------------


async def test_the_payment_block_follows_the_steps_and_the_payee_is_locked_once_money_left(
    client: httpx.AsyncClient, settings: Settings, producer: AIOKafkaProducer
) -> None:
    partner = await new_partner(client, "Paid")
    headers = partner_headers(partner)
    number = account_number()
    app_id = (await submit(client, partner, "PAID-1", payee=payee(number))).json()["id"]
    url = f"/v1/applications/{app_id}"
    order = order_id()
    t0 = datetime.now(UTC)
    common = {"application_id": app_id, "partner_id": partner["id"], "applicant_id": ENTERPRISE,
              "order_id": order, "masked_account": masked(number)}

    ordered = payment_step("payment.ordered", **common, status="ready", at=t0)
    await publish(producer, settings, PAYMENTS, ordered, ENTERPRISE)
    body = await fetch_until(client, url, headers, lambda b: b.get("payment") is not None)
    assert body["payment"] == {"status": "ready", "amount": "400000.00", "order_id": order, "batch_id": None,
                               "updated_at": t0.isoformat()}
    assert [e["type"] for e in body["timeline"]] == ["application.received", "payment.ordered"]
    # Ready, not sent: the payee may still change.
    r = await client.put(f"{url}/payee", json=payee(number), headers=headers)
    assert r.status_code == 200
    moved = await client.put(f"{url}/payee", json=payee(account_number()), headers=headers)
    assert moved.status_code == 200 and moved.json()["changed"] is True

    sent = payment_step("payment.sent", **{**common, "batch_id": "bat_1"}, status="sent",
                        at=t0 + timedelta(seconds=1), causation=ordered)
    await publish(producer, settings, PAYMENTS, sent, ENTERPRISE)
    await fetch_until(client, url, headers, lambda b: b["payment"]["status"] == "sent")
    locked = await client.put(f"{url}/payee", json=payee(account_number()), headers=headers)
    assert locked.status_code == 409, locked.text
    assert "sent" in locked.json()["detail"]

    settled = payment_step("payment.settled", **{**common, "batch_id": "bat_1"}, status="settled",
                           at=t0 + timedelta(seconds=2), causation=sent)
    # A late re-drive of an older step does not move the block back.
    await publish(producer, settings, PAYMENTS, settled, ENTERPRISE)
    late = payment_step("payment.ordered", **common, status="ready", at=t0 - timedelta(seconds=5))
    await publish(producer, settings, PAYMENTS, late, ENTERPRISE)
    body = await fetch_until(client, url, headers, lambda b: len(b["timeline"]) == 6)
    assert body["payment"] == {"status": "settled", "amount": "400000.00", "order_id": order, "batch_id": "bat_1",
                               "updated_at": (t0 + timedelta(seconds=2)).isoformat()}
    assert sorted(e["type"] for e in body["timeline"]) == [
        "application.received", "payee.updated", "payment.ordered", "payment.ordered", "payment.sent",
        "payment.settled"]
    assert (await client.put(f"{url}/payee", json=payee(account_number()), headers=headers)).status_code == 409
    listed = (await client.get("/v1/applications", headers=headers)).json()["items"]
    assert [a["payment"]["status"] for a in listed if a["id"] == app_id] == ["settled"]
    # The steps' envelopes in the history, masked as the ledger sent them.
    history = (await client.get(f"{url}/events", headers=headers)).json()["items"]
    assert [e["data"]["masked_account"] for e in history if e["type"].startswith("payment.")] == [masked(number)] * 4


async def test_a_returned_payment_unlocks_the_payee_and_an_unmasked_step_is_kept_masked(
    client: httpx.AsyncClient, settings: Settings, producer: AIOKafkaProducer
) -> None:
    partner = await new_partner(client, "Returned")
    headers = partner_headers(partner)
    app_id = (await submit(client, partner, "RETURNED-1", payee=payee())).json()["id"]
    url = f"/v1/applications/{app_id}"
    leaked = account_number()
    t0 = datetime.now(UTC)
    common = {"application_id": app_id, "partner_id": partner["id"], "applicant_id": ENTERPRISE,
              "order_id": order_id(), "batch_id": "bat_2"}
    for i, (kind, status) in enumerate((("payment.ordered", "ready"), ("payment.sent", "sent"))):
        await publish(producer, settings, PAYMENTS, payment_step(kind, **common, status=status,
                                                                 at=t0 + timedelta(seconds=i)), ENTERPRISE)
    # A step whose account was not masked by its publisher: intake keeps and shows it masked.
    returned = payment_step("payment.returned", **{**common, "batch_id": None}, status="awaiting_payee",
                            masked_account=leaked, reason_code="AC04", reason="账户已销户",
                            at=t0 + timedelta(seconds=2))
    await publish(producer, settings, PAYMENTS, returned, ENTERPRISE)
    body = await fetch_until(client, url, headers, lambda b: (b.get("payment") or {}).get("status") == "awaiting_payee")
    assert body["payment"]["batch_id"] is None
    for who in (headers, OP, AUD):
        assert leaked not in (await client.get(f"{url}/events", headers=who)).text
    assert await intake_scalar(settings, "SELECT count(*) FROM timeline WHERE envelope::text LIKE :n",
                               n=f"%{leaked}%") == 0
    fixed = await client.put(f"{url}/payee", json=payee(), headers=headers)
    assert fixed.status_code == 200, fixed.text


def test_the_projection_keeps_the_latest_step() -> None:
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    base: dict[str, Any] = {"application_id": "app_x", "partner_id": "ptn_x", "applicant_id": ENTERPRISE, "order_id": "pay_x",
            "amount": "1.00", "batch_id": "bat_x"}
    sent = PaymentSent.model_validate(payment_step("payment.sent", **base, status="sent", at=t0).data)
    state = project(ApplicationState("approved", 3, None), sent, t0.isoformat())
    assert state.payment == {"status": "sent", "amount": "1.00", "order_id": "pay_x", "batch_id": "bat_x",
                             "updated_at": t0.isoformat()}
    older = PaymentSent.model_validate(
        payment_step("payment.sent", **base, status="ready", at=t0 - timedelta(seconds=1)).data)
    assert project(state, older, t0.isoformat()).payment == state.payment
    assert state.status == "approved", "a payment step does not move the status"


async def test_a_failed_statement_does_not_carry_its_values_into_the_logs(settings: Settings) -> None:
    # A failed group commit is logged with its exception: the statement's values (payees among
    # them) must not be part of it.
    number = account_number()
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text("SELECT CAST(:payee AS jsonb), 1 / 0"),
                                   {"payee": orjson.dumps(payee(number)).decode()})
    finally:
        await engine.dispose()
    assert "division by zero" in str(failed.value)
    assert number not in str(failed.value)
