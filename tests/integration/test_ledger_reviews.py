"""Holds and reviews (核定) against real PostgreSQL: a program under review is held on every pool it
draws on (pending_review), reviewers approve all or less or reject it through the API, what is not
approved goes back to every pool at once, a hold keeps its room from others, two reviewers at once
settle it once, the roles hold, an upheld objection revokes, and afterwards the journal verifies and
grantline-replay rebuilds the same ledger (holds and reviews included)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.events import Actor, ObjectionResolved, new_typed_event
from shared.contracts.topics import ANNOUNCEMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.ledger import (
    assessed,
    decided,
    known_partner,
    known_staff,
    ledger_loop,
    new_applicant,
    objections_loop,
    process,
    publish_assessments,
    receipt,
    run_replay,
    scalar,
)

pytestmark = pytest.mark.integration

PRODUCT_SUBJECT = "GT-PRODUCT/subject"
PRODUCT_YEAR = "GT-PRODUCT/beneficiary-year"


@dataclass
class Ledger:
    maker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    decide_loop: ConsumerLoop
    objections: ConsumerLoop
    settings: Settings
    eligibility: async_sessionmaker[AsyncSession]
    reviewer: dict[str, str]
    second_reviewer: dict[str, str]
    staff_auditor: dict[str, str]
    payment_officer: dict[str, str]
    admin: dict[str, str]
    partner: dict[str, str]

    async def decide(self, *receipts: dict[str, Any]) -> list[dict[str, Any]]:
        """As eligibility publishes them (its outbox, the replay's source), then the consumer decides."""
        events = [assessed(r) for r in receipts]
        await publish_assessments(self.settings, self.eligibility, events, broker=False)
        await process(self.decide_loop, events)
        return await decided(self.maker, [r["application_id"] for r in receipts])

    async def review(self, application_id: str, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(f"/v1/awards/{application_id}/review", json=body,
                                      headers=headers or self.reviewer)

    async def balance(self, beneficiary: str, pool: str) -> dict[str, Any]:
        items = (await self.client.get("/v1/balances", params={"beneficiary": beneficiary}, headers=AUD)).json()
        (found,) = [b for b in items["items"] if b["pool"] == pool]
        return dict(found)

    async def queue(self, **params: Any) -> list[dict[str, Any]]:
        resp = await self.client.get("/v1/reviews", params=params, headers=self.reviewer)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    async def kinds(self, application_id: str) -> list[str]:
        async with self.maker() as session:
            rows = await session.execute(text("SELECT kind FROM journal_entries WHERE application_id = :a "
                                              "ORDER BY seq"), {"a": application_id})
            return [r[0] for r in rows]


@pytest.fixture(scope="module")
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    engine, elig_engine = make_engine(settings.database_url, "ledger"), make_engine(settings.database_url, "eligibility")
    maker, eligibility = make_sessionmaker(engine), make_sessionmaker(elig_engine)
    app = create_app(settings)
    try:
        async with routes_only(app, RoutesOnly(settings=settings, maker=maker)) as client:
            yield Ledger(
                maker, client, ledger_loop(maker, settings), objections_loop(maker, settings), settings, eligibility,
                reviewer=await known_staff(maker, "张三", "reviewer"),
                second_reviewer=await known_staff(maker, "李四", "reviewer"),
                staff_auditor=await known_staff(maker, "王五", "auditor"),
                payment_officer=await known_staff(maker, "赵六", "payment_officer"),
                admin=await known_staff(maker, "钱七", "admin"),
                partner=await known_partner(maker),
            )
    finally:
        await engine.dispose()
        await elig_engine.dispose()


def product(applicant: str, subject: str, amount: str, **over: Any) -> dict[str, Any]:
    """GT-PRODUCT asks for an amount (000 §五(四): at most 3000万 a product, 1亿 a year); its review is required."""
    return receipt("GT-PRODUCT", applicant, subject, amount, review="required", requested=amount, **over)


async def test_a_required_program_is_held_for_review_with_its_pools_committed(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-HELD", "30000000.00")
    (d,) = await ledger.decide(r)
    assert (d["status"], d["entitlement"], d["awarded"], d["held"], d["review"]) == (
        "pending_review", "30000000.00", "0.00", "30000000.00", "required")
    assert sorted((x["pool"], x["amount"]) for x in d["draws"]) == [(PRODUCT_YEAR, "30000000.00"),
                                                                     (PRODUCT_SUBJECT, "30000000.00")]
    for pool in (PRODUCT_SUBJECT, PRODUCT_YEAR):
        balance = await ledger.balance(ent, pool)
        assert (balance["committed"], balance["held"]) == ("30000000.00", "30000000.00")
    assert await ledger.kinds(r["application_id"]) == ["hold"]
    status = await scalar(ledger.maker, "SELECT status FROM decisions WHERE application_id = :a", a=r["application_id"])
    assert status == "pending_review"


async def test_an_auto_program_decides_at_once_and_says_so(ledger: Ledger) -> None:
    ent = new_applicant()
    old = receipt("GT-EQUITY", ent, "ROUND-OLD", "1000000.00")  # a receipt from before review modes
    auto = receipt("GT-EQUITY", ent, "ROUND-NEW", "1000000.00", review="auto")
    out = await ledger.decide(old, auto)
    assert [(d["status"], d["awarded"], d["review"], "held" in d) for d in out] == [
        ("approved", "1000000.00", "auto", False)] * 2
    assert (await ledger.balance(ent, "GT-EQUITY/beneficiary-year"))["held"] == "0.00"


async def test_the_queue_lists_holds_oldest_first_with_what_a_reviewer_weighs(ledger: Ledger) -> None:
    ent = new_applicant()
    first, second = product(ent, "PRODUCT-Q1", "20000000.00"), product(ent, "PRODUCT-Q2", "25000000.00", year=2025)
    await ledger.decide(first, second)
    mine = [i for i in await ledger.queue(limit=200) if i["applicant"]["id"] == ent]
    assert [i["application_id"] for i in mine] == [first["application_id"], second["application_id"]]
    item = mine[0]
    assert (item["entitlement"], item["held"], item["requested_amount"]) == ("20000000.00",) * 3
    assert item["applicant"]["name"] and item["program"] == "GT-PRODUCT" and item["year"] == 2024
    assert {p["pool"]: (p["cap"], p["committed"], p["held"]) for p in item["pools"]} == {
        PRODUCT_SUBJECT: ("30000000.00", "20000000.00", "20000000.00"),
        PRODUCT_YEAR: ("100000000.00", "20000000.00", "20000000.00"),
    }
    assert [(r["rule"], r["citation"]) for r in item["rules"]] == [
        ("registered_in_shanghai", "002 §一(三)"), ("window.event_date", "000 §六")]
    by_year = await ledger.queue(year=2025, program="GT-PRODUCT", limit=200)
    assert second["application_id"] in {i["application_id"] for i in by_year}
    assert first["application_id"] not in {i["application_id"] for i in by_year}
    page = (await ledger.client.get("/v1/reviews", params={"limit": 1}, headers=ledger.reviewer)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    after = (await ledger.client.get("/v1/reviews", params={"limit": 1, "cursor": page["next_cursor"]},
                                     headers=ledger.reviewer)).json()
    assert after["items"][0]["application_id"] != page["items"][0]["application_id"]
    bad = await ledger.client.get("/v1/reviews", params={"cursor": "not-a-cursor"}, headers=ledger.reviewer)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_approve_in_full(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-FULL", "30000000.00")
    await ledger.decide(r)
    resp = await ledger.review(r["application_id"], {"decision": "approve", "reason": "专家评审核定"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["decision"], body["status"], body["held"], body["awarded"], body["released"]) == (
        "approve", "approved", "30000000.00", "30000000.00", "0.00")
    assert body["reviewed_by"] == {"id": body["reviewed_by"]["id"], "name": "张三"}
    assert body["reviewed_by"]["id"].startswith("stf_") and body["reason"] == "专家评审核定"
    assert [x["amount"] for x in body["draws"]] == ["30000000.00"] * 2
    balance = await ledger.balance(ent, PRODUCT_SUBJECT)
    assert (balance["committed"], balance["held"]) == ("30000000.00", "0.00")
    assert await ledger.kinds(r["application_id"]) == ["hold", "approval"]
    assert r["application_id"] not in {i["application_id"] for i in await ledger.queue(limit=200)}
    row = (await _one(ledger, "SELECT status, awarded_fen FROM decisions WHERE application_id = :a", r))
    assert tuple(row) == ("approved", 30_000_000_00)
    event = await _one(ledger, "SELECT envelope FROM outbox WHERE type = 'award.reviewed' AND subject = :a", r)
    assert event[0]["data"] == body


async def test_approve_reduced_gives_every_pool_the_difference_back(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-2000", "30000000.00")
    await ledger.decide(r)
    resp = await ledger.review(r["application_id"], {"decision": "approve", "amount": "20000000.00",
                                                     "reason": "专家评审核定 2000万"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["awarded"], body["released"]) == ("partially_approved", "20000000.00", "10000000.00")
    assert body["reasons"][-1]["code"] == "REVIEW_REDUCED"
    for pool in (PRODUCT_SUBJECT, PRODUCT_YEAR):
        balance = await ledger.balance(ent, pool)
        assert (balance["committed"], balance["held"]) == ("20000000.00", "0.00"), pool
    assert await ledger.kinds(r["application_id"]) == ["hold", "approval", "release"]
    award = await _one(ledger, "SELECT amount_fen, review, revoked FROM awards WHERE application_id = :a", r)
    assert tuple(award) == (20_000_000_00, "approved", False)
    # Room given back is room: the same product may now be topped up by another program.
    ct = receipt("CT-PRODUCT", ent, "PRODUCT-2000", "25000000.00", review="required", requested="25000000.00")
    (top_up,) = await ledger.decide(ct)
    assert (top_up["status"], top_up["held"], top_up["top_up_of"]) == (
        "pending_review", "5000000.00", r["application_id"])


async def test_reject_restores_every_pool(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-NO", "12000000.00")
    await ledger.decide(r)
    resp = await ledger.review(r["application_id"], {"decision": "reject", "reason": "材料不实"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["awarded"], body["released"], body["draws"]) == (
        "rejected", "0.00", "12000000.00", [])
    assert body["reasons"][-1]["code"] == "REVIEW_REJECTED"
    for pool in (PRODUCT_SUBJECT, PRODUCT_YEAR):
        balance = await ledger.balance(ent, pool)
        assert (balance["committed"], balance["held"]) == ("0.00", "0.00"), pool
    assert await ledger.kinds(r["application_id"]) == ["hold", "rejection"]
    revoke = await ledger.client.post(f"/v1/awards/{r['application_id']}/revoke", json={"reason": "x"}, headers=OP)
    assert revoke.status_code == 409, "nothing is left to revoke"
    # The product is free again: a new application for it is held in full.
    (again,) = await ledger.decide(product(ent, "PRODUCT-NO", "12000000.00"))
    assert (again["status"], again["held"], again["top_up_of"]) == ("pending_review", "12000000.00", None)


async def test_a_hold_stops_another_application_taking_its_room(ledger: Ledger) -> None:
    # GT-CLIN: 50万 per trial across every hospital (000 §四(二)5). One hospital's hold takes it all.
    trial = f"NCT{uuid.uuid4().int % 10**8:08d}"
    first_hospital, second_hospital, third_hospital = (("1231" + new_applicant()[4:]) for _ in range(3))
    first = receipt("GT-CLIN", first_hospital, trial, "500000.00", review="required")
    (held,) = await ledger.decide(first)
    assert (held["status"], held["held"]) == ("pending_review", "500000.00")
    (blocked,) = await ledger.decide(receipt("GT-CLIN", second_hospital, trial, "400000.00", review="required"))
    assert (blocked["status"], blocked["awarded"], blocked["limited_by"]) == ("rejected", "0.00", "GT-CLIN/project")
    assert [r["code"] for r in blocked["reasons"]] == ["CAP_EXHAUSTED"]
    assert blocked["reasons"][0]["citation"] == "000 §四(二)5"
    resp = await ledger.review(first["application_id"], {"decision": "reject", "reason": "不符合要求"})
    assert resp.status_code == 200, resp.text
    (freed,) = await ledger.decide(receipt("GT-CLIN", third_hospital, trial, "400000.00", review="required"))
    assert (freed["status"], freed["held"]) == ("pending_review", "400000.00")


async def test_two_reviewers_at_once_settle_an_award_once(ledger: Ledger) -> None:
    ent = new_applicant()
    receipts = [product(ent, f"PRODUCT-RACE-{i}", "10000000.00") for i in range(6)]
    await ledger.decide(*receipts)

    async def race(app_id: str) -> list[int]:
        answers = await asyncio.gather(
            ledger.review(app_id, {"decision": "approve", "amount": "6000000.00", "reason": "甲"}, ledger.reviewer),
            ledger.review(app_id, {"decision": "reject", "reason": "乙"}, ledger.second_reviewer),
        )
        return sorted(a.status_code for a in answers)

    outcomes = await asyncio.gather(*(race(r["application_id"]) for r in receipts))
    assert outcomes == [[200, 409]] * len(receipts)
    reviews = await scalar(ledger.maker, "SELECT count(*) FROM reviews WHERE application_id = ANY(:a)",
                           a=[r["application_id"] for r in receipts])
    events = await scalar(ledger.maker, "SELECT count(*) FROM outbox WHERE type = 'award.reviewed' "
                                        "AND subject = ANY(:a)", a=[r["application_id"] for r in receipts])
    assert (reviews, events) == (len(receipts), len(receipts))
    kept = await scalar(ledger.maker, "SELECT coalesce(sum(amount_fen), 0) FROM awards WHERE beneficiary = :b "
                                      "AND NOT revoked", b=ent)
    assert (await ledger.balance(ent, PRODUCT_YEAR))["committed"] == f"{kept // 100}.00"
    assert (await ledger.balance(ent, PRODUCT_YEAR))["held"] == "0.00"


async def test_who_may_read_the_queue_and_who_may_review(ledger: Ledger) -> None:
    r = product(new_applicant(), "PRODUCT-ROLES", "1000000.00")
    await ledger.decide(r)
    url, body = f"/v1/awards/{r['application_id']}/review", {"decision": "approve", "reason": "ok"}
    for headers in (ledger.reviewer, OP, AUD, ledger.staff_auditor):
        assert (await ledger.client.get("/v1/reviews", headers=headers)).status_code == 200
    for headers in (ledger.partner, ledger.payment_officer, ledger.admin):
        assert (await ledger.client.get("/v1/reviews", headers=headers)).status_code == 403
    assert (await ledger.client.get("/v1/reviews")).status_code == 401
    for headers in (AUD, ledger.staff_auditor, ledger.partner, ledger.payment_officer, ledger.admin):
        resp = await ledger.client.post(url, json=body, headers=headers)
        assert resp.status_code == 403, headers
    assert (await ledger.client.post(url, json=body)).status_code == 401
    assert (await ledger.client.post(url, json=body, headers={"Authorization": "Bearer gls_nobody"})).status_code == 401
    assert await scalar(ledger.maker, "SELECT count(*) FROM reviews WHERE application_id = :a",
                        a=r["application_id"]) == 0, "nobody without the role wrote anything"
    # Reviewers read balances (they weigh holds against them); partners do not.
    assert (await ledger.client.get("/v1/balances", headers=ledger.reviewer)).status_code == 200
    assert (await ledger.client.get("/v1/balances", headers=ledger.partner)).status_code == 403
    # The bootstrap operator holds the reviewer's role.
    assert (await ledger.client.post(url, json=body, headers=OP)).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"decision": "approve", "amount": "30000000.01", "reason": "r"}, "amount"),
    ({"decision": "approve", "amount": "1.234", "reason": "r"}, "amount"),
    ({"decision": "approve", "amount": 100, "reason": "r"}, "amount"),
    ({"decision": "approve", "amount": "-5.00", "reason": "r"}, "amount"),
    ({"decision": "approve", "amount": "0.00", "reason": "r"}, "amount"),
    ({"decision": "reject", "amount": "1.00", "reason": "r"}, "amount"),
    ({"decision": "approve"}, "reason"),
    ({"decision": "approve", "reason": "   "}, "reason"),
    ({"decision": "approve", "reason": "x" * 501}, "reason"),
    ({"decision": "maybe", "reason": "r"}, "decision"),
    ({"reason": "r"}, "decision"),
    ({"decision": "approve", "reason": "r", "extra": 1}, "extra"),
])
async def test_a_bad_review_is_422_naming_the_field(ledger: Ledger, body: dict[str, Any], field: str) -> None:
    r = product(new_applicant(), "PRODUCT-BAD", "30000000.00")
    await ledger.decide(r)
    resp = await ledger.review(r["application_id"], body)
    assert resp.status_code == 422, resp.text
    assert field in [e["field"] for e in resp.json()["errors"]]
    assert await ledger.kinds(r["application_id"]) == ["hold"], "nothing was written"


async def test_409_for_a_second_review_or_an_award_not_pending_and_404_for_none(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-TWICE", "5000000.00")
    auto = receipt("GT-EQUITY", ent, "ROUND-AUTO", "1000000.00", review="auto")
    capped = product(ent, "PRODUCT-TWICE", "5000000.00")  # a duplicate: nothing held
    await ledger.decide(r, auto, capped)
    assert (await ledger.review(r["application_id"], {"decision": "approve", "reason": "一"})).status_code == 200
    again = await ledger.review(r["application_id"], {"decision": "reject", "reason": "二"}, ledger.second_reviewer)
    assert again.status_code == 409 and "already reviewed" in again.json()["detail"]
    for other in (auto, capped):
        resp = await ledger.review(other["application_id"], {"decision": "approve", "reason": "r"})
        assert resp.status_code == 409, resp.text
    assert (await ledger.review("app_nope", {"decision": "approve", "reason": "r"})).status_code == 404
    # Even an amount above the hold is a 409 once the award is settled: it is not pending any more.
    late = await ledger.review(r["application_id"], {"decision": "approve", "amount": "99999999.00", "reason": "r"})
    assert late.status_code == 409


async def test_revoking_a_pending_award_releases_its_hold(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-REVOKED", "8000000.00")
    await ledger.decide(r)
    resp = await ledger.client.post(f"/v1/awards/{r['application_id']}/revoke", json={"reason": "撤回申请"},
                                    headers=OP)
    assert resp.status_code == 200, resp.text
    assert resp.json()["amount"] == "8000000.00"
    balance = await ledger.balance(ent, PRODUCT_YEAR)
    assert (balance["committed"], balance["held"]) == ("0.00", "0.00")
    assert await ledger.kinds(r["application_id"]) == ["hold", "revocation"]
    assert r["application_id"] not in {i["application_id"] for i in await ledger.queue(limit=200)}
    resp = await ledger.review(r["application_id"], {"decision": "approve", "reason": "r"})
    assert resp.status_code == 409 and "revoked" in resp.json()["detail"]


def resolved(application_id: str, outcome: str, *, by: str = "stf_reviewer01") -> Event:
    return new_typed_event(
        ObjectionResolved(objection_id=f"obj_{uuid.uuid4().hex[:12]}", announcement_id=f"ann_{application_id}",
                          application_id=application_id, partner_id="ptn_test", outcome=outcome,  # type: ignore[arg-type]
                          reason="异议成立：重复申报" if outcome == "upheld" else "异议不成立",
                          resolved_by=Actor(id=by, name="张三"), resolved_at="2026-01-06T10:00:00+08:00"),
        source="grantline.notify", subject=application_id,
    )


async def test_an_upheld_objection_revokes_the_award_and_a_dismissed_one_does_nothing(ledger: Ledger) -> None:
    ent = new_applicant()
    r = product(ent, "PRODUCT-OBJECTED", "30000000.00")
    await ledger.decide(r)
    assert (await ledger.review(r["application_id"], {"decision": "approve", "amount": "20000000.00",
                                                      "reason": "核定"})).status_code == 200
    await process(ledger.objections, [resolved(r["application_id"], "dismissed")], topic=ANNOUNCEMENTS)
    assert (await ledger.balance(ent, PRODUCT_YEAR))["committed"] == "20000000.00"

    upheld = resolved(r["application_id"], "upheld", by="stf_resolver")
    await process(ledger.objections, [upheld, upheld], topic=ANNOUNCEMENTS)
    await process(ledger.objections, [resolved(r["application_id"], "upheld")], topic=ANNOUNCEMENTS)
    for pool in (PRODUCT_SUBJECT, PRODUCT_YEAR):
        assert (await ledger.balance(ent, pool))["committed"] == "0.00"
    (event,) = (await _all(ledger, "SELECT envelope FROM outbox WHERE type = 'award.revoked' AND subject = :a", r))
    data = event[0]["data"]
    assert (data["reason_code"], data["revoked_by"], data["amount"]) == ("OBJECTION_UPHELD", "stf_resolver",
                                                                         "20000000.00")
    assert data["revoked_at"] == "2026-01-06T10:00:00+08:00"
    assert await ledger.kinds(r["application_id"]) == ["hold", "approval", "release", "revocation"]
    row = await _one(ledger, "SELECT revoked_by, reason FROM revocations WHERE application_id = :a", r)
    assert tuple(row) == ("stf_resolver", "异议成立：重复申报")
    # An objection naming something the ledger never granted is logged and acknowledged, not parked.
    await process(ledger.objections, [resolved("app_unknown", "upheld")], topic=ANNOUNCEMENTS)
    parked = await scalar(ledger.maker, "SELECT count(*) FROM outbox WHERE type = 'event.dead_lettered' "
                                        "AND subject = 'app_unknown'")
    assert parked == 0


async def test_finally_the_journal_verifies_and_the_replay_is_equal(ledger: Ledger) -> None:
    # One more chain in which a review re-decides a later member: a hold, a top-up held on it,
    # then the base rejected: the top-up becomes the base, held again for its full amount.
    ent = new_applicant()
    base = product(ent, "PRODUCT-CHAIN", "10000000.00")
    top = receipt("CT-PRODUCT", ent, "PRODUCT-CHAIN", "16000000.00", review="required", requested="16000000.00")
    await ledger.decide(base, top)
    assert (await ledger.review(base["application_id"], {"decision": "reject", "reason": "x"})).status_code == 200
    redecided = (await decided(ledger.maker, [top["application_id"]]))[-1]
    assert (redecided["status"], redecided["held"], redecided["top_up_of"]) == ("pending_review", "16000000.00", None)

    verify = (await ledger.client.get("/v1/audit/verify", headers=AUD)).json()
    assert verify["ok"] is True, verify
    reviews = await scalar(ledger.maker, "SELECT count(*) FROM reviews")
    assert reviews >= 10
    code, out, err = await run_replay(ledger.settings, "--source", "outbox")
    assert code == 0, out + err
    assert "replay EQUAL" in out and f"{reviews} reviews" in out


async def _one(ledger: Ledger, sql: str, r: dict[str, Any]) -> Any:
    (row,) = await _all(ledger, sql, r)
    return row


async def _all(ledger: Ledger, sql: str, r: dict[str, Any]) -> list[Any]:
    async with ledger.maker() as session:
        return list((await session.execute(text(sql), {"a": r["application_id"]})).all())
