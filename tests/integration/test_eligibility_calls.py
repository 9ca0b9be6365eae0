"""Calls for applications (申报批次, CONTRACT.md "Policy administration") with real PostgreSQL and
broker: opening one (and every 422, leaving nothing), two admins opening overlapping calls at
once (exactly one wins, the database decides), listing, closing (then `call.closed`), and
assessing under a call: its catalog version, a late acceptance decided CALL_CLOSED, a 2026
successor version decided by its new rule. Calls survive a restart and the outbox rebuilds them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from services.eligibility.app import create_app as create_eligibility
from services.eligibility.policy.repository import OverlappingCall, PolicyRepository
from services.intake.app import create_app as create_intake
from shared.config.settings import Settings
from shared.contracts.topics import POLICY
from shared.db.engine import make_engine, make_sessionmaker
from shared.policy.calls import CallTerms
from shared.policy.catalog import catalog_version_of
from tests.support.apps import running
from tests.support.auth import AUD, OP, partner_headers
from tests.support.eligibility import (
    SUCCESSOR_CITATION,
    application_received,
    eligibility_db,
    equity_2026_body,
    outbox_events,
    receipt,
    send_received,
    successor_document,
)
from tests.support.intake import fetch_until, new_partner
from tests.support.kafka import read_topic
from tests.support.paging import read_pages
from tests.support.policy import call_body, shipped_document, wait_for_calls
from tests.support.waiting import eventually
from tools.samples import make_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def eligibility(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_eligibility(settings)) as client:
        yield client


BEIJING = timezone(timedelta(hours=8))


def instant(delta: timedelta = timedelta()) -> str:
    """Now plus `delta`, in Beijing time (as an admin in Shanghai writes it)."""
    return (datetime.now(UTC) + delta).astimezone(BEIJING).isoformat()


def open_now(program: str, year: int, **terms: Any) -> dict[str, Any]:
    """A call body open from an hour ago for a month."""
    return call_body(program, year, opens_at=instant(-timedelta(hours=1)), closes_at=instant(timedelta(days=30)),
                     **terms)


async def post_call(client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] = OP) -> httpx.Response:
    return await client.post("/v1/calls", json=body, headers=headers)


async def opened(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await post_call(client, body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def stored(settings: Settings) -> tuple[int, int]:
    """(calls, call.opened events) in eligibility's tables."""
    async with eligibility_db(settings) as conn:
        calls = await conn.scalar(text("SELECT count(*) FROM calls"))
        events = await conn.scalar(text("SELECT count(*) FROM outbox WHERE type = 'call.opened'"))
    return int(calls or 0), int(events or 0)


async def assessed(settings: Settings, app_id: str) -> dict[str, Any]:
    async def kept() -> dict[str, Any] | None:
        async with eligibility_db(settings) as conn:
            return await receipt(conn, app_id)

    found: dict[str, Any] = await eventually(kept, f"{app_id} assessed", timeout_s=30, every_s=0.1)
    return found


async def test_an_admin_opens_a_call_and_call_opened_says_so(eligibility: httpx.AsyncClient, settings: Settings) -> None:
    body = open_now("GT-PCT", 2023, budget="50000000.00", title="2023年度基因治疗PCT专利资助")
    call = await opened(eligibility, body)
    assert call["id"].startswith("call_")
    shipped = catalog_version_of(shipped_document())
    assert {k: call[k] for k in ("program", "year", "title", "status", "event_window", "catalog_version", "budget",
                                 "opened_by", "closed_by", "closed_at", "close_reason")} == {
        "program": "GT-PCT", "year": 2023, "title": "2023年度基因治疗PCT专利资助", "status": "open",
        "event_window": body["event_window"], "catalog_version": shipped, "budget": "50000000.00",
        "opened_by": {"id": "operator"}, "closed_by": None, "closed_at": None, "close_reason": None,
    }
    assert datetime.fromisoformat(call["opens_at"]) == datetime.fromisoformat(body["opens_at"])
    assert datetime.fromisoformat(call["closes_at"]) == datetime.fromisoformat(body["closes_at"])
    assert (await eligibility.get(f"/v1/calls/{call['id']}")).json() == call

    async with eligibility_db(settings) as conn:
        [event] = [e for e in await outbox_events(conn, "call.opened") if e["subject"] == call["id"]]
    assert event["key"] == "GT-PCT"
    assert event["data"] == {k: call[k] for k in ("id", "program", "year", "title", "opens_at", "closes_at",
                                                   "event_window", "catalog_version", "budget", "opened_by",
                                                   "opened_at")}
    on_the_wire = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + POLICY,
                                   lambda ms: any(m.value and orjson.loads(m.value)["id"] == event["id"] for m in ms))
    assert [m.key for m in on_the_wire if m.value and orjson.loads(m.value)["id"] == event["id"]] == [b"GT-PCT"]

    without_budget = await opened(eligibility, open_now("GT-PCT", 2024))
    assert without_budget["budget"] is None
    async with eligibility_db(settings) as conn:
        [event] = [e for e in await outbox_events(conn, "call.opened") if e["subject"] == without_budget["id"]]
    assert "budget" not in event["data"]


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("a program not in the version", {"program": "NO-SUCH"}, "program"),
    ("an event window outside the program's", {"event_window": {"from": "2020-01-01", "to": "2025-12-31"}},
     "event_window"),
    ("an event window ending before it starts", {"event_window": {"from": "2024-06-01", "to": "2024-01-01"}},
     "event_window"),
    ("a support year outside the program's", {"year": 2030}, "year"),
    ("closing when it opens", {"closes_at": "OPENS_AT"}, "closes_at"),
    ("closing before it opens", {"closes_at": "2020-01-01T00:00:00+08:00"}, "closes_at"),
    ("a time without an offset", {"opens_at": "2026-01-01T00:00:00"}, "opens_at"),
    ("a time at the edge of the calendar", {"opens_at": "0001-01-01T00:00:00+08:00"}, "opens_at"),
    ("an unknown catalog version", {"catalog_version": "sha256:" + "0" * 64}, "catalog_version"),
    ("a catalog version that is not one", {"catalog_version": "latest"}, "catalog_version"),
    ("a budget that is not an amount", {"budget": "五千万"}, "budget"),
    ("a budget with three decimals", {"budget": "1.001"}, "budget"),
    ("a negative budget", {"budget": "-5.00"}, "budget"),
    ("a budget of nothing", {"budget": "0.00"}, "budget"),
    ("a budget as a number", {"budget": 5000}, "budget"),
    ("a budget too large to store", {"budget": "1" * 30 + ".00"}, "budget"),
    ("an unknown key", {"deadline": "2027-01-01"}, "deadline"),
    ("a blank title", {"title": "  "}, "title"),
]


@pytest.mark.parametrize(("what", "change", "field"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refused_call_names_the_field_and_leaves_nothing(
    eligibility: httpx.AsyncClient, settings: Settings, what: str, change: dict[str, Any], field: str,
) -> None:
    body = {**open_now("GT-PRODUCT", 2023), **change}
    if body["closes_at"] == "OPENS_AT":
        body["closes_at"] = body["opens_at"]
    before = await stored(settings)
    r = await post_call(eligibility, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert await stored(settings) == before


async def test_a_call_overlapping_another_for_the_same_program_and_year_is_refused(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    first = await opened(eligibility, open_now("GT-INSURANCE", 2023))
    before = await stored(settings)
    overlapping = call_body("GT-INSURANCE", 2023, opens_at=instant(timedelta(days=29)),
                            closes_at=instant(timedelta(days=60)))
    r = await post_call(eligibility, overlapping)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "opens_at" and first["id"] in error["message"]
    assert await stored(settings) == before
    # Right after it, for another year, or for another program: no overlap.
    after = call_body("GT-INSURANCE", 2023, opens_at=first["closes_at"], closes_at=instant(timedelta(days=60)))
    assert (await post_call(eligibility, after)).status_code == 201
    assert (await post_call(eligibility, open_now("GT-INSURANCE", 2024))).status_code == 201
    assert (await post_call(eligibility, open_now("GT-CLIN", 2023))).status_code == 201


async def test_two_admins_opening_overlapping_calls_at_once_exactly_one_wins(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    bodies = [open_now("CT-INSURANCE", 2024, title=f"第{i}批") for i in range(5)]
    answers = await asyncio.gather(*(post_call(eligibility, body) for body in bodies))
    assert sorted(a.status_code for a in answers) == [201, 422, 422, 422, 422]
    for refused in (a for a in answers if a.status_code == 422):
        assert [e["field"] for e in refused.json()["errors"]] == ["opens_at"]
    async with eligibility_db(settings) as conn:
        calls = await conn.scalar(text("SELECT count(*) FROM calls WHERE program = 'CT-INSURANCE' AND year = 2024"))
        events = [e for e in await outbox_events(conn, "call.opened") if e["data"]["program"] == "CT-INSURANCE"]
    assert calls == 1 and len(events) == 1


async def test_the_database_refuses_an_overlap_that_both_checks_missed(settings: Settings) -> None:
    """The constraint, not the check before the insert, decides: two transactions that each saw
    no overlap (neither had committed) cannot both store their call."""
    now = datetime.now(UTC)
    version = catalog_version_of(shipped_document())

    def terms(call_id: str, opens_in: timedelta) -> CallTerms:
        return CallTerms(id=call_id, program="BIO-DIGITAL", year=2024, opens_at=now + opens_in,
                         closes_at=now + opens_in + timedelta(days=10), event_from=date(2021, 6, 1),
                         event_to=date(2024, 5, 31), catalog_version=version, budget_fen=None)

    engine = make_engine(settings.database_url, "eligibility", pool_size=2)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as one, maker() as other:
            first, second = PolicyRepository(one), PolicyRepository(other)
            a, b = terms("call_race_a", timedelta()), terms("call_race_b", timedelta(days=5))
            assert await first.overlapping_call(a) is None and await second.overlapping_call(b) is None
            await first.open_call(a, "a", {"id": "operator"})
            blocked = asyncio.ensure_future(second.open_call(b, "b", {"id": "operator"}))
            await one.commit()
            with pytest.raises(OverlappingCall):
                await blocked
            await other.rollback()
        async with engine.begin() as conn:
            ids = (await conn.scalars(text("SELECT id FROM calls WHERE program = 'BIO-DIGITAL'"))).all()
            # Stored behind the API's back (no call.opened): gone again, so the outbox rebuilds every call.
            await conn.execute(text("DELETE FROM calls WHERE id = 'call_race_a'"))
        assert ids == ["call_race_a"]
    finally:
        await engine.dispose()


async def test_calls_are_listed_by_program_year_and_openness_a_page_at_a_time(eligibility: httpx.AsyncClient) -> None:
    open_2022 = await opened(eligibility, open_now("CT-PRODUCT", 2022))
    later = await opened(eligibility, call_body("CT-PRODUCT", 2023, opens_at=instant(timedelta(days=10)),
                                                closes_at=instant(timedelta(days=20))))
    ended = await opened(eligibility, call_body("CT-PRODUCT", 2024, opens_at=instant(-timedelta(days=20)),
                                                closes_at=instant(-timedelta(days=10))))
    assert (later["status"], ended["status"]) == ("scheduled", "closed")

    async def ids(limit: int = 50, **params: Any) -> list[str]:
        pages = await read_pages(eligibility, "/v1/calls", limit, {}, program="CT-PRODUCT", **params)
        return [call["id"] for page in pages for call in page]

    assert await ids() == [ended["id"], later["id"], open_2022["id"]]  # newest first
    assert await ids(limit=1) == [ended["id"], later["id"], open_2022["id"]]
    assert await ids(open="true") == [open_2022["id"]]
    assert await ids(open="false") == [ended["id"], later["id"]]
    assert await ids(year=2023) == [later["id"]]
    assert (await eligibility.get("/v1/calls", params={"program": "NO-SUCH"})).json() == {"items": [],
                                                                                          "next_cursor": None}
    bad = await eligibility.get("/v1/calls", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert (await eligibility.get("/v1/calls", params={"limit": 0})).status_code == 422
    assert (await eligibility.get("/v1/calls/call_nonexistent")).status_code == 404


async def test_closing_a_call_moves_its_end_to_now_and_publishes_call_closed(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    call = await opened(eligibility, open_now("BIO-CHAIN", 2024))
    path = f"/v1/calls/{call['id']}/close"
    assert (await eligibility.post(path, json={"reason": "预算用尽"}, headers=AUD)).status_code == 403
    assert (await eligibility.post(path, json={"reason": "预算用尽"})).status_code == 401
    assert (await eligibility.post(path, json={"reason": " "}, headers=OP)).status_code == 422
    assert (await eligibility.post(path, json={}, headers=OP)).status_code == 422
    assert (await eligibility.post("/v1/calls/call_nonexistent/close", json={"reason": "x"},
                                   headers=OP)).status_code == 404

    before = datetime.now(UTC)
    r = await eligibility.post(path, json={"reason": "预算用尽"}, headers=OP)
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed" and closed["close_reason"] == "预算用尽"
    assert closed["closed_by"] == {"id": "operator"}
    assert before - timedelta(seconds=5) < datetime.fromisoformat(closed["closes_at"]) <= datetime.now(UTC)
    assert closed["closes_at"] == closed["closed_at"]
    assert (await eligibility.get("/v1/calls", params={"program": "BIO-CHAIN", "open": "true"})).json()["items"] == []

    async with eligibility_db(settings) as conn:
        [event] = [e for e in await outbox_events(conn, "call.closed") if e["subject"] == call["id"]]
    assert event["key"] == "BIO-CHAIN"
    assert event["data"] == {"id": call["id"], "program": "BIO-CHAIN", "year": 2024,
                             "closes_at": closed["closes_at"], "closed_by": {"id": "operator"}, "reason": "预算用尽"}
    on_the_wire = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + POLICY,
                                   lambda ms: any(m.value and orjson.loads(m.value)["id"] == event["id"] for m in ms))
    assert [orjson.loads(m.value)["type"] for m in on_the_wire
            if m.value and orjson.loads(m.value)["subject"] == call["id"]] == ["call.opened", "call.closed"]

    again = await eligibility.post(path, json={"reason": "再次关闭"}, headers=OP)
    assert (again.status_code, again.json()) == (200, closed)  # closed already: nothing changes
    async with eligibility_db(settings) as conn:
        assert len([e for e in await outbox_events(conn, "call.closed") if e["subject"] == call["id"]]) == 1

    # Closed before it opened: it admits nothing at all, and a call may open in its place.
    future = await opened(eligibility, call_body("BIO-CHAIN", 2023, opens_at=instant(timedelta(days=5)),
                                                 closes_at=instant(timedelta(days=9))))
    shut = (await eligibility.post(f"/v1/calls/{future['id']}/close", json={"reason": "撤回"}, headers=OP)).json()
    assert shut["closes_at"] == shut["opens_at"] == future["opens_at"] and shut["status"] == "closed"
    assert (await post_call(eligibility, call_body("BIO-CHAIN", 2023, opens_at=instant(timedelta(days=6)),
                                                   closes_at=instant(timedelta(days=8))))).status_code == 201


async def test_an_application_received_after_its_call_closed_is_ineligible_call_closed(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    call = await opened(eligibility, open_now("GT-EQUITY", 2024))
    closed = (await eligibility.post(f"/v1/calls/{call['id']}/close", json={"reason": "提前截止"},
                                     headers=OP)).json()
    in_time = application_received("app_call_in_time", make_body("GT-EQUITY"), call["id"],
                                   time=datetime.fromisoformat(closed["closes_at"]) - timedelta(minutes=1))
    late = application_received("app_call_late", make_body("GT-EQUITY"), call["id"],
                                time=datetime.fromisoformat(closed["closes_at"]))
    await send_received(settings, in_time, late)
    accepted, refused = await assessed(settings, "app_call_in_time"), await assessed(settings, "app_call_late")
    assert accepted["eligible"] is True and accepted["call_id"] == call["id"]
    assert refused["eligible"] is False and refused["call_id"] == call["id"]
    assert [(r["code"], r["citation"]) for r in refused["reasons"]] == [("CALL_CLOSED", f"call {call['id']}")]
    assert refused["entitlement"] == "0.00"


async def test_a_2026_successor_version_and_its_call_decide_by_the_new_rule(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    """As an admin and a partner would: publish the successor, open its call, apply through intake,
    see the decision made by the new rule, the receipt citing the new document."""
    document = successor_document()
    published = await eligibility.post("/v1/catalog/versions", json={"document": document, "note": "2026"},
                                       headers=OP)
    assert published.status_code == 201, published.text
    version = published.json()["version"]
    # The successor's program is refused a call under the shipped version (its window ended in 2025).
    refused = await post_call(eligibility, open_now("GT-EQUITY", 2026, event_window=("2026-01-01", "2026-12-31"),
                                                    catalog_version=catalog_version_of(shipped_document())))
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"event_window", "year"}
    call = await opened(eligibility, open_now("GT-EQUITY", 2026, event_window=("2026-01-01", "2026-12-31"),
                                              title="2026年度基因治疗企业股权融资资助"))
    assert call["catalog_version"] == version  # the latest, by default

    # 4000万 of financing: below the old 5000万 threshold, above the successor's 3000万; 3% of it.
    async with running(create_intake(settings)) as intake:
        await wait_for_calls(intake, {call["id"]})
        partner = await new_partner(intake)
        r = await intake.post("/v1/applications", json=equity_2026_body(),
                              headers=partner_headers(partner, "equity-2026"))
        assert r.status_code == 202, r.text
        app_id = r.json()["id"]
        decided = await fetch_until(intake, f"/v1/applications/{app_id}", partner_headers(partner),
                                    lambda b: any(e["type"] == "application.assessed" for e in b["timeline"]),
                                    timeout_s=30)
    assert decided["call_id"] == call["id"]
    assert decided["decision"]["entitlement"] == "1200000.00"
    got = await assessed(settings, app_id)
    assert got["eligible"] is True and got["entitlement"] == "1200000.00"
    assert (got["catalog_version"], got["call_id"]) == (version, call["id"])
    rules = {r["rule"]: r for r in got["rules"]}
    assert rules["threshold.financing_received"]["citation"] == SUCCESSOR_CITATION
    assert rules["formula"]["citation"] == SUCCESSOR_CITATION
    assert rules["window.event_date"]["citation"] == f"call {call['id']}"
    async with eligibility_db(settings) as conn:
        [event] = [e for e in await outbox_events(conn, "application.assessed") if e["subject"] == app_id]
    assert event["data"]["call_id"] == call["id"] and event["data"]["catalog_version"] == version

    # POST /v1/evaluate: under the open call's version; with no call open, under the latest.
    evaluated = await eligibility.post("/v1/evaluate", json=equity_2026_body(), headers=OP)
    assert evaluated.status_code == 200, evaluated.text
    assert (evaluated.json()["catalog_version"], evaluated.json()["entitlement"]) == (version, "1200000.00")
    assert evaluated.json()["call_id"] == call["id"]
    no_call = await eligibility.post("/v1/evaluate", json=make_body("BIO-UPGRADE"), headers=OP)
    assert no_call.status_code == 200, no_call.text
    latest = (await eligibility.get("/v1/catalog")).json()["version"]
    assert no_call.json()["catalog_version"] == latest and "call_id" not in no_call.json()


async def test_calls_survive_a_restart_and_the_outbox_rebuilds_them(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    closing = await opened(eligibility, open_now("BIO-CDMO", 2022, budget="1000000.00"))
    await eligibility.post(f"/v1/calls/{closing['id']}/close", json={"reason": "重建测试"}, headers=OP)
    await opened(eligibility, open_now("BIO-CDMO", 2023))

    async with running(create_eligibility(settings)) as restarted:
        live = [c for page in await read_pages(restarted, "/v1/calls", 200, {}) for c in page]
        versions = [v for page in await read_pages(restarted, "/v1/catalog/versions", 200, {}) for v in page]
        documents = {v["version"]: (await restarted.get(f"/v1/catalog/versions/{v['version']}")).json()
                     for v in versions}

    # What the outbox alone says (the history every replica is built from), folded in order.
    async with eligibility_db(settings) as conn:
        rows = await conn.execute(text(
            "SELECT envelope FROM outbox WHERE type IN ('catalog.published', 'call.opened', 'call.closed') "
            "ORDER BY seq"))
        history = [row.envelope for row in rows]
    rebuilt_calls: dict[str, dict[str, Any]] = {}
    rebuilt_documents: dict[str, Any] = {}
    for event in history:
        data = event["data"]
        if event["type"] == "catalog.published":
            rebuilt_documents[data["version"]] = data["document"]
        elif event["type"] == "call.opened":
            rebuilt_calls[data["id"]] = {"budget": None, **data, "closed_by": None, "close_reason": None}
        else:
            rebuilt_calls[data["id"]].update(closes_at=data["closes_at"], closed_by=data["closed_by"],
                                             close_reason=data["reason"])
    assert rebuilt_documents == documents
    keys = ("id", "program", "year", "title", "opens_at", "closes_at", "event_window", "catalog_version", "budget",
            "opened_by", "opened_at", "closed_by", "close_reason")
    assert {c["id"]: {k: c[k] for k in keys} for c in live} == {
        i: {k: c[k] for k in keys} for i, c in rebuilt_calls.items()}
