"""Review and objections (异议) in notify against real PostgreSQL, a real broker and a real HTTP
receiver: an award pending review is not announced, an approving review is (with the approved
amount, and a signed award.reviewed webhook); objections hold finalisation, a dismissal after the
notice ended finalises at once, an upheld objection goes on the wire as objection.resolved; every
refusal (422, 409, 404, 413, 429); and the objector's name and contact appear nowhere but in
objection.filed: not in the listing, the page, the webhooks, the logs."""

from __future__ import annotations

import io
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.app import create_app
from services.notify.deps import NotifyContext
from services.notify.domain import verify_signature
from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import ANNOUNCEMENTS, AWARDS
from shared.observability.logs import JsonFormatter
from shared.web.auth import webhook_secret_for
from shared.web.ratelimit import RateLimiter
from tests.support.apps import running
from tests.support.auth import AUD, OP
from tests.support.kafka import publish, read_topic
from tests.support.notify import decided, register_partner, revoked
from tests.support.receiver import Received, ScriptedReceiver, scripted_receiver
from tests.support.waiting import eventually, wait_until_quiet

pytestmark = pytest.mark.integration

# Unique, so that any copy of them anywhere is found.
NAME = "异议人" + secrets.token_hex(4)
CONTACT = f"objector-{secrets.token_hex(4)}@example.cn"
ORGANISATION = "某某大学" + secrets.token_hex(3)
STATEMENT = "<script>alert('x')</script>申报材料与事实不符 & <b>不实</b>"


def objection(**overrides: Any) -> dict[str, Any]:
    return {"name": NAME, "organisation": ORGANISATION, "contact": CONTACT, "statement": STATEMENT} | overrides


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notify_settings(settings: Settings) -> Settings:
    # A long notice: the tests end it by hand (the row's notice_ends_at) when they need it ended.
    return settings.model_copy(
        update={"allow_private_callbacks": True, "webhook_backoff_seconds": 0.05, "notice_period_seconds": 3600}
    )


@pytest.fixture(scope="module")
async def notify_app(notify_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(notify_settings, webhook_timeout=1.0)
    async with running(app) as client:
        ctx: NotifyContext = app.state.ctx
        ctx.objection_limiter = RateLimiter(1000.0, 1000)  # the limit has a test of its own
        yield client, app


@pytest.fixture
def notify(notify_app: tuple[httpx.AsyncClient, FastAPI]) -> httpx.AsyncClient:
    return notify_app[0]


@pytest.fixture(scope="module")
def logs(notify_app: tuple[httpx.AsyncClient, FastAPI]) -> Iterator[io.StringIO]:
    """Every log line of the module as the services write them (JSON), from the root logger down
    (added once the app has configured logging, which replaces the root's handlers)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("notify"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


@pytest.fixture
async def hook() -> AsyncIterator[ScriptedReceiver]:
    async with scripted_receiver() as receiver:
        yield receiver


# --- helpers --------------------------------------------------------------------------------


def pending(partner_id: str) -> tuple[Event, str]:
    """A `required` program's decision as the ledger publishes it: pending review, held, nothing awarded."""
    event, key = decided(partner_id, status="approved", awarded="0.00", program="GT-PRODUCT")
    data = {**event.data, "status": "pending_review", "entitlement": "30000000.00", "limited_by": None,
            "reasons": [], "draws": [{"pool": "GT-PRODUCT/beneficiary-year", "amount": "30000000.00"}],
            "held": "30000000.00", "review": "required"}
    return event.model_copy(update={"data": data}), key


def reviewed(decision: Event, *, approve: bool = True, awarded: str = "20000000.00") -> Event:
    d = decision.data
    return new_event("award.reviewed", source="grantline.ledger", subject=d["application_id"], causation=decision,
                     data={
                         "application_id": d["application_id"], "partner_id": d["partner_id"],
                         "program": d["program"], "year": d["year"], "applicant": d["applicant"],
                         "subject": d["subject"], "decision": "approve" if approve else "reject",
                         "status": ("partially_approved" if approve else "rejected"), "held": d["held"],
                         "awarded": awarded if approve else "0.00",
                         "released": "10000000.00" if approve else d["held"],
                         "reasons": [{"code": "REVIEW_REDUCED", "message": "reduced in review", "citation": None}]
                         if approve else [{"code": "REVIEW_REJECTED", "message": "rejected", "citation": None}],
                         "reviewed_by": {"id": "stf_reviewer", "name": "李审核"}, "reason": "专家评审核定",
                         "reviewed_at": "2026-09-29T02:00:00+00:00", "draws": [],
                     })


def assert_signed(request: Received, partner_id: str, settings: Settings) -> None:
    secret = webhook_secret_for(partner_id, settings.webhook_signing_key)
    assert request.headers["grantline-event-id"] == request.json["id"]
    assert verify_signature(secret, request.headers["grantline-signature"], request.body,
                            now=int(time.time()))


async def announced(client: httpx.AsyncClient, subject: str) -> dict[str, Any]:
    async def found() -> list[dict[str, Any]]:
        items = (await client.get("/v1/announcements", params={"limit": 1000})).json()["items"]
        return [i for i in items if i["subject"] == subject]

    [item] = await eventually(found, what=f"the announcement of {subject}")
    return item  # type: ignore[no-any-return]


async def auto_award(producer: AIOKafkaProducer, s: Settings, notify_db: AsyncEngine, client: httpx.AsyncClient,
                     hook: ScriptedReceiver) -> tuple[str, Event, dict[str, Any]]:
    partner = await register_partner(producer, s, notify_db, hook.url)
    decision, key = decided(partner, status="approved", awarded="1600000.00")
    await publish(producer, s, AWARDS, decision, key)
    return partner, decision, await announced(client, decision.data["subject"])


async def end_notice(engine: AsyncEngine, announcement_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE announcements SET notice_ends_at = published_at WHERE id = :id"),
                           {"id": announcement_id})


async def notice_row(engine: AsyncEngine, announcement_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT finalized_at, withdrawn_at, objections_open, objections_upheld FROM announcements WHERE id = :id"
        ), {"id": announcement_id})).one()


async def outbox_types(engine: AsyncEngine, application_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT type FROM outbox WHERE subject = :a ORDER BY seq"),
                                  {"a": application_id})
        return [r[0] for r in rows]


def holds_no_objector(text_: str) -> bool:
    return NAME not in text_ and CONTACT not in text_ and ORGANISATION not in text_


# --- review: only approved awards are announced ---------------------------------------------


async def test_a_pending_award_is_not_announced_and_is_once_approved(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver,
) -> None:
    s = notify_settings
    partner = await register_partner(producer, s, notify_db, hook.url)
    decision, key = pending(partner)
    app_id, subject = decision.data["application_id"], decision.data["subject"]
    await publish(producer, s, AWARDS, decision, key)

    [told] = await eventually(lambda: _of(hook, "award.decided"), what="the pending decision's webhook")
    assert_signed(told, partner, s)
    assert told.json["data"]["status"] == "pending_review"
    await wait_until_quiet(notify)
    listing = (await notify.get("/v1/announcements", params={"limit": 1000})).json()["items"]
    assert subject not in {i["subject"] for i in listing}
    assert await outbox_types(notify_db, app_id) == []

    review = reviewed(decision)
    await publish(producer, s, AWARDS, review, key)
    [told] = await eventually(lambda: _of(hook, "award.reviewed"), what="the award.reviewed webhook")
    assert_signed(told, partner, s)
    assert told.json == {"id": str(review.id), "type": "award.reviewed", "application_id": app_id,
                         "data": review.data}
    item = await announced(notify, subject)
    assert item["amount"] == "20000000.00" and item["status"] == "under_notice" and item["objections_open"] == 0
    assert item["id"].startswith("ann_")
    assert await outbox_types(notify_db, app_id) == ["announcement.published"]


async def test_a_rejecting_review_is_not_announced(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver,
) -> None:
    s = notify_settings
    partner = await register_partner(producer, s, notify_db, hook.url)
    decision, key = pending(partner)
    await publish(producer, s, AWARDS, decision, key)
    await publish(producer, s, AWARDS, reviewed(decision, approve=False), key)
    [told] = await eventually(lambda: _of(hook, "award.reviewed"), what="the rejecting review's webhook")
    assert told.json["data"]["decision"] == "reject"
    await wait_until_quiet(notify)
    assert await outbox_types(notify_db, decision.data["application_id"]) == []


async def _of(hook: ScriptedReceiver, event_type: str) -> list[Received]:
    return hook.of_type(event_type)


# --- objections: holding, dismissing, upholding ---------------------------------------------


async def test_an_objection_holds_finalisation_and_a_dismissal_finalises_at_once(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver, logs: io.StringIO,
) -> None:
    s = notify_settings
    partner, decision, item = await auto_award(producer, s, notify_db, notify, hook)
    ann = item["id"]

    filed = await notify.post(f"/v1/announcements/{ann}/objections", json=objection())
    assert filed.status_code == 202, filed.text
    assert filed.json()["status"] == "open" and filed.json()["id"].startswith("obj_")
    obj = filed.json()["id"]
    second = await notify.post(f"/v1/announcements/{ann}/objections",
                               json=objection(organisation=None, statement="第二份异议"))
    assert second.status_code == 202
    assert (await announced(notify, decision.data["subject"]))["objections_open"] == 2

    # The notice ends with objections open: the finaliser leaves the award alone.
    await end_notice(notify_db, ann)
    await wait_until_quiet(notify, settle_s=1.0)
    row = await notice_row(notify_db, ann)
    assert row.finalized_at is None and row.objections_open == 2
    assert hook.of_type("award.finalized") == []
    # ... and takes no more objections.
    late = await notify.post(f"/v1/announcements/{ann}/objections", json=objection())
    assert late.status_code == 409 and "ended" in late.json()["detail"]

    # Reviewers see who objected; an auditor sees the statement but not the objector.
    mine = await _objections(notify, OP, ann)
    assert {o["id"] for o in mine} == {obj, second.json()["id"]}
    first = next(o for o in mine if o["id"] == obj)
    assert (first["name"], first["contact"], first["organisation"]) == (NAME, CONTACT, ORGANISATION)
    assert first["statement"] == STATEMENT and first["status"] == "open" and first["resolution"] is None
    for seen in await _objections(notify, AUD, ann):
        assert (seen["name"], seen["contact"], seen["organisation"]) == (None, None, None)
        assert seen["statement"] in {STATEMENT, "第二份异议"}

    # Dismissing one leaves the other holding; dismissing the last finalises at once.
    one = await notify.post(f"/v1/objections/{obj}/resolve", json={"outcome": "dismissed", "reason": "查无实据"},
                            headers=OP)
    assert one.status_code == 200, one.text
    assert one.json()["finalized"] is False and one.json()["resolved_by"] == {"id": "operator"}
    again = await notify.post(f"/v1/objections/{obj}/resolve", json={"outcome": "upheld", "reason": "x"},
                              headers=OP)
    assert again.status_code == 409
    last = await notify.post(f"/v1/objections/{second.json()['id']}/resolve",
                             json={"outcome": "dismissed", "reason": "异议不成立"}, headers=OP)
    assert last.status_code == 200 and last.json()["finalized"] is True
    row = await notice_row(notify_db, ann)
    assert row.finalized_at is not None and row.objections_open == 0
    assert (await announced(notify, decision.data["subject"]))["status"] == "final"
    app_id = decision.data["application_id"]
    assert await outbox_types(notify_db, app_id) == [
        "announcement.published", "objection.filed", "objection.filed", "objection.resolved",
        "objection.resolved", "award.finalized"]

    # The partner is told of each resolution (signed; no objector) and of the finalisation.
    resolved = await eventually(lambda: _of(hook, "objection.resolved"), what="objection.resolved webhooks",
                                until=lambda got: len(got) == 2)
    for request in resolved:
        assert_signed(request, partner, s)
        assert request.json["data"]["outcome"] == "dismissed" and request.json["data"]["partner_id"] == partner
    [final] = await eventually(lambda: _of(hook, "award.finalized"), what="award.finalized webhook")
    assert_signed(final, partner, s)
    assert (await notify.post(f"/v1/announcements/{ann}/objections", json=objection())).status_code == 409

    dismissed = (await notify.get("/v1/objections", params={"status": "dismissed", "limit": 200},
                                  headers=OP)).json()["items"]
    resolution = next(o for o in dismissed if o["id"] == obj)["resolution"]
    assert resolution["outcome"] == "dismissed" and resolution["reason"] == "查无实据"
    assert resolution["by"] == {"id": "operator"}

    # Nowhere but objection.filed: the webhooks, the listing, the page, the logs.
    for request in hook.requests:
        assert holds_no_objector(request.body.decode())
    assert holds_no_objector((await notify.get("/v1/announcements", params={"limit": 1000})).text)
    assert holds_no_objector((await notify.get("/announcements")).text)
    assert holds_no_objector(logs.getvalue())


async def _objections(client: httpx.AsyncClient, headers: dict[str, str], announcement_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get("/v1/objections", params=params, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return [o for o in items if o["announcement_id"] == announcement_id]


async def test_an_upheld_objection_goes_on_the_wire_and_holds_until_the_revocation(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver, logs: io.StringIO,
) -> None:
    s = notify_settings
    partner, decision, item = await auto_award(producer, s, notify_db, notify, hook)
    ann, app_id = item["id"], decision.data["application_id"]
    obj = (await notify.post(f"/v1/announcements/{ann}/objections", json=objection())).json()["id"]
    upheld = await notify.post(f"/v1/objections/{obj}/resolve", json={"outcome": "upheld", "reason": "申报不实"},
                               headers=OP)
    assert upheld.status_code == 200 and upheld.json()["status"] == "upheld"

    messages = await read_topic(
        s.kafka_bootstrap_servers, s.topic_namespace + ANNOUNCEMENTS,
        until=lambda got: any(orjson.loads(v)["type"] == "objection.resolved" and orjson.loads(v)["subject"] == app_id
                              for _, v in got if v))
    mine = [(k, orjson.loads(v)) for k, v in messages if v and orjson.loads(v)["subject"] == app_id]
    by_type = {e["type"]: (k, e) for k, e in mine}
    key, resolved = by_type["objection.resolved"]
    assert key == decision.data["applicant"]["id"].encode()  # keyed by the applicant, like every award event
    assert resolved["data"] == {
        "objection_id": obj, "announcement_id": ann, "application_id": app_id, "partner_id": partner,
        "outcome": "upheld", "reason": "申报不实", "resolved_by": {"id": "operator"},
        "resolved_at": resolved["data"]["resolved_at"]}
    filed = by_type["objection.filed"][1]
    assert resolved["causation_id"] == filed["id"] and resolved["correlation_id"] == decision.correlation_id
    # objection.filed is the one event that carries who objected.
    assert (filed["data"]["name"], filed["data"]["contact"]) == (NAME, CONTACT)
    for _, event in mine:
        if event["type"] != "objection.filed":
            assert holds_no_objector(orjson.dumps(event).decode())

    # Upheld: the ledger revokes; until then the award must not become final.
    await end_notice(notify_db, ann)
    await wait_until_quiet(notify, settle_s=1.0)
    row = await notice_row(notify_db, ann)
    assert row.finalized_at is None and row.objections_upheld == 1
    await publish(producer, s, AWARDS, revoked(decision, reason="OBJECTION_UPHELD"), decision.data["applicant"]["id"])
    await eventually(lambda: _of(hook, "award.revoked"), what="the revocation's webhook")
    assert (await notice_row(notify_db, ann)).withdrawn_at is not None
    withdrawn = await notify.post(f"/v1/announcements/{ann}/objections", json=objection())
    assert withdrawn.status_code == 409 and "withdrawn" in withdrawn.json()["detail"]
    assert holds_no_objector(logs.getvalue())


# --- refusals ----------------------------------------------------------------------------------


async def test_every_refusal(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver,
) -> None:
    s = notify_settings
    _, _, item = await auto_award(producer, s, notify_db, notify, hook)
    url = f"/v1/announcements/{item['id']}/objections"

    missing = await notify.post(url, json={})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"name", "contact", "statement"}
    blank = await notify.post(url, json=objection(name="   ", contact=""))
    assert {e["field"] for e in blank.json()["errors"]} == {"name", "contact"}
    assert (await notify.post(url, json=objection(statement="a\x00b"))).status_code == 422
    assert (await notify.post(url, content=b"{not json", headers={"Content-Type": "application/json"})).status_code == 400

    assert (await notify.post("/v1/announcements/ann_unknown/objections", json=objection())).status_code == 404
    too_big = await notify.post(url, json=objection(statement="异" * 30_000))  # 90 000 bytes of UTF-8
    assert too_big.status_code == 413

    # Resolution: reviewers only, a reason, a known objection.
    obj = (await notify.post(url, json=objection())).json()["id"]
    resolve = f"/v1/objections/{obj}/resolve"
    assert (await notify.post(resolve, json={"outcome": "dismissed", "reason": "x"})).status_code == 401
    assert (await notify.post(resolve, json={"outcome": "dismissed", "reason": "x"}, headers=AUD)).status_code == 403
    no_reason = await notify.post(resolve, json={"outcome": "dismissed"}, headers=OP)
    assert no_reason.status_code == 422 and [e["field"] for e in no_reason.json()["errors"]] == ["reason"]
    bad = await notify.post(resolve, json={"outcome": "maybe", "reason": "x"}, headers=OP)
    assert [e["field"] for e in bad.json()["errors"]] == ["outcome"]
    assert (await notify.post("/v1/objections/obj_nope/resolve", json={"outcome": "upheld", "reason": "x"},
                              headers=OP)).status_code == 404
    # The list: staff readers only, a bounded page, a cursor of its own.
    assert (await notify.get("/v1/objections")).status_code == 401
    assert (await notify.get("/v1/objections", params={"limit": 100_000}, headers=OP)).status_code == 422
    assert (await notify.get("/v1/objections", params={"cursor": "nope"}, headers=OP)).status_code == 422
    assert (await notify.get("/v1/objections", params={"status": "closed"}, headers=OP)).status_code == 422


async def test_objections_are_limited_per_client_address(
    notify_app: tuple[httpx.AsyncClient, FastAPI], producer: AIOKafkaProducer, notify_settings: Settings,
    notify_db: AsyncEngine, hook: ScriptedReceiver,
) -> None:
    client, app = notify_app
    ctx: NotifyContext = app.state.ctx
    _, _, item = await auto_award(producer, notify_settings, notify_db, client, hook)
    url = f"/v1/announcements/{item['id']}/objections"
    kept = ctx.objection_limiter
    ctx.objection_limiter = RateLimiter(1 / 60, 2)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4000)),
                                     base_url="http://test") as one, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 4000)),
                                  base_url="http://test") as other:
            assert (await one.post(url, json=objection())).status_code == 202
            assert (await one.post(url, json={})).status_code == 422  # a refused one counts too
            limited = await one.post(url, json=objection())
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert limited.headers["content-type"] == "application/problem+json"
            form = await one.post(f"/announcements/{item['id']}/objections", data=objection())
            assert form.status_code == 429 and "retry-after" in form.headers
            assert (await other.post(url, json=objection())).status_code == 202  # another address is not held up
    finally:
        ctx.objection_limiter = kept


# --- the page's form ------------------------------------------------------------------------


async def test_the_page_offers_a_form_that_files_an_objection(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient,
    hook: ScriptedReceiver, logs: io.StringIO,
) -> None:
    _, _, item = await auto_award(producer, notify_settings, notify_db, notify, hook)
    ann = item["id"]
    page = (await notify.get("/announcements", params={"limit": 1000})).text
    action = f'action="/announcements/{ann}/objections"'
    assert action in page and 'name="statement"' in page and "<script" not in page

    answer = await notify.post(f"/announcements/{ann}/objections", data=objection())
    assert answer.status_code == 202 and answer.headers["content-type"].startswith("text/html")
    assert "异议已受理" in answer.text and "obj_" in answer.text
    assert holds_no_objector(answer.text) and "script-src" not in answer.headers["content-security-policy"]

    refused = await notify.post(f"/announcements/{ann}/objections", data={"statement": "只有理由"})
    assert refused.status_code == 422 and "姓名" in refused.text and "联系方式" in refused.text
    unknown = await notify.post("/announcements/ann_unknown/objections", data=objection())
    assert unknown.status_code == 404
    not_form = await notify.post(f"/announcements/{ann}/objections", json=objection())
    assert not_form.status_code == 415

    # Filed through the form like through the API: HTML kept as text, shown as text.
    [filed] = [o for o in await _objections(notify, OP, ann)]
    assert filed["statement"] == STATEMENT and filed["organisation"] == ORGANISATION
    page = (await notify.get("/announcements", params={"limit": 1000})).text
    assert "1 项待处理" in page and holds_no_objector(page) and "<script>alert" not in page

    await end_notice(notify_db, ann)
    page = (await notify.get("/announcements", params={"limit": 1000})).text
    assert action not in page  # the notice has ended: no form
    assert holds_no_objector(logs.getvalue())


# --- a database error while storing an objection logs no personal data -------------------------


async def test_a_failed_write_logs_nothing_of_the_objector(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine,
    notify_app: tuple[httpx.AsyncClient, FastAPI], hook: ScriptedReceiver, logs: io.StringIO,
) -> None:
    notify, app = notify_app
    _, _, item = await auto_award(producer, notify_settings, notify_db, notify, hook)
    refuse = f"test_refuse_{uuid.uuid4().hex[:8]}"
    async with notify_db.begin() as conn:
        await conn.execute(text(f"ALTER TABLE objections ADD CONSTRAINT {refuse} CHECK (statement <> 'REFUSE-ME')"))
    # The app re-raises an unhandled error after answering 500 (for the server to log): a client
    # that takes the answer instead of the exception.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            failed = await client.post(f"/v1/announcements/{item['id']}/objections",
                                       json=objection(statement="REFUSE-ME"))
    finally:
        async with notify_db.begin() as conn:
            await conn.execute(text(f"ALTER TABLE objections DROP CONSTRAINT {refuse}"))
    assert failed.status_code == 500
    written = logs.getvalue()
    assert "ObjectionNotStored" in written and "CheckViolation" in written  # the failure is logged ...
    assert holds_no_objector(written)  # ... without the statement's parameters
    assert (await notice_row(notify_db, item["id"])).objections_open == 0  # rolled back whole
