"""Notify against real PostgreSQL, a real Kafka-protocol broker and real HTTP receivers on
loopback: signed webhooks, retries, parking and re-driving, isolation between partners,
the public notice (公示), revocation, and finalisation exactly once with two instances. (The SSRF
check at delivery: tests/integration/test_ssrf.py.)"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.app import create_app
from services.notify.dispatcher.handlers import Dispatcher
from services.notify.domain import delivery_for, verify_signature
from services.notify.finaliser.handlers import Finaliser
from services.notify.repository import SqlNotifyRepository
from shared.config.settings import Settings
from shared.contracts.topics import ANNOUNCEMENTS, AWARDS
from shared.db.engine import make_engine, make_sessionmaker
from shared.web.auth import webhook_secret_for
from tests.support.apps import running
from tests.support.auth import AUD, OP
from tests.support.kafka import publish, read_topic
from tests.support.notify import decided, register_partner, revoked, scratch_schema
from tests.support.receiver import HANG, Received, scripted_receiver
from tests.support.waiting import eventually, wait_until_quiet

pytestmark = pytest.mark.integration


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def notify_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allow_private_callbacks": True,
            "webhook_backoff_seconds": 0.05,
            "webhook_attempts_max": 3,
            "notice_period_seconds": 2,
        }
    )


@pytest.fixture(scope="module")
async def notify(notify_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One notify instance for the module (a consumer group join costs seconds on the broker).
    A short webhook timeout and two slots per partner, so a dead partner is cheap to show."""
    app = create_app(notify_settings, webhook_timeout=1.0, per_partner_concurrency=2)
    async with running(app) as client:
        yield client


def assert_signed(request: Received, partner_id: str, settings: Settings) -> None:
    secret = webhook_secret_for(partner_id, settings.webhook_signing_key)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["grantline-event-id"] == request.json["id"]
    assert verify_signature(secret, request.headers["grantline-signature"], request.body, now=int(time.time()))
    assert not verify_signature(
        webhook_secret_for("ptn_someone_else", settings.webhook_signing_key),
        request.headers["grantline-signature"], request.body, now=int(time.time()),
    )


async def outbox_types(engine: AsyncEngine, application_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT type FROM outbox WHERE subject = :a ORDER BY seq"), {"a": application_id}
        )
        return [r[0] for r in rows]


# --- tests ----------------------------------------------------------------------------------


async def test_signed_decisions_then_finalized_after_the_notice(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient
) -> None:
    s, client = notify_settings, notify
    async with scripted_receiver() as hook:
        partner = await register_partner(producer, s, notify_db, hook.url)
        approved, key_a = decided(partner, status="partially_approved", awarded="400000.00")
        rejected, key_r = decided(partner, status="rejected", awarded="0.00")
        await publish(producer, s, AWARDS, approved, key_a)
        await publish(producer, s, AWARDS, rejected, key_r)

        async def both_decided() -> bool:
            return len(hook.of_type("award.decided")) >= 2

        await eventually(both_decided, what="two signed award.decided webhooks")
        by_app = {r.json["application_id"]: r for r in hook.of_type("award.decided")}
        for event in (approved, rejected):
            request = by_app[event.data["application_id"]]
            assert_signed(request, partner, s)
            assert request.json == {"id": str(event.id), "type": "award.decided",
                                    "application_id": event.data["application_id"], "data": event.data}

        # Published at once, under notice; the rejected decision is not announced.
        listing = (await client.get("/v1/announcements", params={"year": 2024, "program": "GT-EQUITY"})).json()
        mine = [i for i in listing["items"] if i["subject"] == approved.data["subject"]]
        assert len(mine) == 1 and mine[0]["status"] == "under_notice"
        assert mine[0]["amount"] == "400000.00" and mine[0]["applicant_name"] == "上海某某生物科技有限公司"
        assert not [i for i in listing["items"] if i["subject"] == rejected.data["subject"]]
        for item in listing["items"]:
            # The announcement's own id (ann_…, which objections name), never an internal one.
            assert not {"application_id", "partner_id", "applicant_id"} & set(item)
            assert item["id"].startswith("ann_") and item["objections_open"] == 0

        async def finalized() -> list[Received]:
            return hook.of_type("award.finalized")

        [final] = await eventually(finalized, timeout_s=s.notice_period_seconds + 8, what="award.finalized webhook")
        assert_signed(final, partner, s)
        data = final.json["data"]
        assert data["application_id"] == approved.data["application_id"]
        assert data["amount"] == "400000.00" and data["partner_id"] == partner and data["year"] == 2024
        assert set(data) == {"application_id", "partner_id", "program", "year", "subject", "amount", "finalized_at"}

        listing = (await client.get("/v1/announcements", params={"status": "final"})).json()
        assert [i["status"] for i in listing["items"] if i["subject"] == approved.data["subject"]] == ["final"]
        assert await outbox_types(notify_db, approved.data["application_id"]) == [
            "announcement.published", "award.finalized"]
        assert await outbox_types(notify_db, rejected.data["application_id"]) == []

        # Both events reach the announcements topic, keyed by the applicant.
        messages = await read_topic(s.kafka_bootstrap_servers, s.topic_namespace + ANNOUNCEMENTS,
                                    until=lambda got: any(orjson.loads(v)["id"] == final.json["id"]
                                                          for _, v in got if v))
        envelopes = [orjson.loads(v) for _, v in messages if v]
        published = [e for e in envelopes if e["subject"] == approved.data["application_id"]]
        assert [e["type"] for e in published] == ["announcement.published", "award.finalized"]
        pub = published[0]
        assert pub["causation_id"] == str(approved.id)
        assert pub["correlation_id"] == approved.correlation_id
        assert set(pub["data"]) == {"application_id", "partner_id", "program", "year", "applicant_name",
                                    "subject", "amount", "published_at", "notice_ends_at", "announcement_id"}
        assert pub["data"]["announcement_id"] == mine[0]["id"] == "ann_" + pub["id"].replace("-", "")

        # The page renders the same notice.
        page = await client.get("/announcements", params={"year": 2024})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert approved.data["subject"] in page.text and "公示" in page.text
        assert "script-src" not in page.headers["content-security-policy"]


async def test_retries_until_the_third_attempt_succeeds(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient
) -> None:
    s, client = notify_settings, notify
    async with scripted_receiver(lambda n: 500 if n <= 2 else 204) as hook:
        partner = await register_partner(producer, s, notify_db, hook.url)
        event, key = decided(partner, status="rejected", awarded="0.00")
        app_id = event.data["application_id"]
        await publish(producer, s, AWARDS, event, key)

        async def delivered() -> list[dict[str, Any]]:
            r = await client.get("/v1/deliveries", params={"application_id": app_id, "status": "delivered"},
                                 headers=OP)
            return r.json()["items"]  # type: ignore[no-any-return]

        [delivery] = await eventually(delivered, what="delivery after two failures")
        assert len(hook.requests) == 3
        assert len({r.json["id"] for r in hook.requests}) == 1  # the same event id each time
        for request in hook.requests:
            assert_signed(request, partner, s)
        assert delivery["attempt_count"] == 3
        attempts = delivery["attempts"]
        assert [a["attempt"] for a in attempts] == [1, 2, 3]
        assert [a["status_code"] for a in attempts] == [500, 500, 204]
        assert [a["outcome"] for a in attempts] == ["failed", "failed", "delivered"]
        assert attempts[0]["error"].startswith("HTTP 500")
        assert delivery["event_type"] == "award.decided" and delivery["partner_id"] == partner

        # Operators only.
        assert (await client.get("/v1/deliveries")).status_code == 401
        denied = await client.get("/v1/deliveries", headers=AUD)
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"


async def test_dead_partner_is_parked_without_holding_up_others_and_can_be_redriven(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient
) -> None:
    s, client = notify_settings, notify
    answer = {"status": HANG}
    async with scripted_receiver(lambda n: answer["status"]) as dead, scripted_receiver() as healthy:
        dead_partner = await register_partner(producer, s, notify_db, dead.url)
        good_partner = await register_partner(producer, s, notify_db, healthy.url)
        dead_events = [decided(dead_partner, status="rejected", awarded="0.00") for _ in range(3)]
        for event, key in dead_events:
            await publish(producer, s, AWARDS, event, key)

        async def dead_busy() -> bool:
            return len(dead.requests) >= 2

        await eventually(dead_busy, what="the dead partner's first requests")
        started = time.monotonic()
        good_events = [decided(good_partner, status="rejected", awarded="0.00") for _ in range(3)]
        for event, key in good_events:
            await publish(producer, s, AWARDS, event, key)

        async def good_done() -> bool:
            return len(healthy.requests) >= 3

        await eventually(good_done, what="the healthy partner's deliveries")
        took = time.monotonic() - started
        # The dead partner's requests are still hanging (1 s timeout), yet the healthy one got
        # everything promptly; the dead partner never had more than its 2 slots.
        assert took < 2.0, f"healthy partner waited {took:.2f}s behind a dead one"
        assert len(dead.requests) == 2

        dead_ids = {e.data["application_id"] for e, _ in dead_events}

        async def parked() -> list[dict[str, Any]]:
            r = await client.get("/v1/deliveries", params={"status": "parked", "partner_id": dead_partner},
                                 headers=OP)
            items = r.json()["items"]
            return items if len(items) == 3 else []

        items = await eventually(parked, timeout_s=15, what="three parked deliveries")
        assert {i["application_id"] for i in items} == dead_ids
        for item in items:
            assert item["attempt_count"] == s.webhook_attempts_max
            assert [a["outcome"] for a in item["attempts"]] == ["failed"] * s.webhook_attempts_max
            assert all("timed out" in a["error"] for a in item["attempts"])
            assert item["parked_at"] is not None
        one = next(iter(dead_ids))
        filtered = await client.get("/v1/deliveries", params={"application_id": one, "status": "parked"},
                                    headers=OP)
        assert [i["application_id"] for i in filtered.json()["items"]] == [one]

        # The partner is back: an operator re-drives the parked deliveries.
        answer["status"] = 200
        target = items[0]["id"]
        assert (await client.post(f"/v1/deliveries/{target}/redrive")).status_code == 401
        r = await client.post(f"/v1/deliveries/{target}/redrive", headers=OP)
        assert r.status_code == 200, r.text
        assert r.json()["redriven_by"] == "operator" and r.json()["status"] in {"pending", "delivered"}

        async def redelivered() -> dict[str, Any] | None:
            d = (await client.get(f"/v1/deliveries/{target}", headers=OP)).json()
            return d if d["status"] == "delivered" else None

        d = await eventually(redelivered, what="the re-driven delivery")
        assert d["attempt_count"] == s.webhook_attempts_max + 1
        assert d["attempts"][-1]["outcome"] == "delivered"
        assert d["redrives"][0]["by"] == "operator" and d["redrives"][0]["previous_status"] == "parked"
        again = await client.post(f"/v1/deliveries/{target}/redrive", headers=OP)
        assert again.status_code == 409
        assert (await client.post("/v1/deliveries/dlv_nope/redrive", headers=OP)).status_code == 404
        assert [r.json["id"] for r in dead.requests].count(d["event_id"]) == s.webhook_attempts_max + 1


async def test_revoked_award_is_withdrawn_and_never_finalized(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient
) -> None:
    s, client = notify_settings, notify
    async with scripted_receiver() as hook:
        partner = await register_partner(producer, s, notify_db, hook.url)
        decision, key = decided(partner, status="approved", awarded="1600000.00")
        revocation = revoked(decision)
        app_id = decision.data["application_id"]
        await publish(producer, s, AWARDS, decision, key)
        await publish(producer, s, AWARDS, revocation, key)

        async def announced_as_revoked() -> list[Received]:
            return hook.of_type("award.revoked")

        [notice] = await eventually(announced_as_revoked, what="award.revoked webhook")
        assert_signed(notice, partner, s)
        assert notice.json["id"] == str(revocation.id) and notice.json["data"]["reason"] == "fraud found"
        assert len(hook.of_type("award.decided")) == 1

        # Time must pass by design: the notice would have ended by now, so a finalisation that
        # must not come has had its chance; once notify is quiet, one that came would show.
        await asyncio.sleep(s.notice_period_seconds + 1.0)
        await wait_until_quiet(client)
        assert hook.of_type("award.finalized") == []
        async with notify_db.connect() as conn:
            row = (await conn.execute(
                text("SELECT withdrawn_at, finalized_at FROM announcements WHERE application_id = :a"),
                {"a": app_id})).one()
        assert row.withdrawn_at is not None and row.finalized_at is None
        assert await outbox_types(notify_db, app_id) == ["announcement.published"]
        listing = (await client.get("/v1/announcements")).json()["items"]
        assert decision.data["subject"] not in {i["subject"] for i in listing}


async def test_two_instances_finalize_each_award_once(
    notify_settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine, notify: httpx.AsyncClient
) -> None:
    """The module's instance plus a second one on the same schema: both finalisers are running
    when the notices end, and each award is finalised (event + webhook) exactly once."""
    s = notify_settings
    async with scripted_receiver() as hook:
        partner = await register_partner(producer, s, notify_db, hook.url)
        events = [decided(partner, status="approved", awarded=f"{1000 + i}.00") for i in range(30)]
        for event, key in events:
            await publish(producer, s, AWARDS, event, key)
        app_ids = {e.data["application_id"] for e, _ in events}

        async def announced() -> bool:
            async with notify_db.connect() as conn:
                n = await conn.scalar(text("SELECT count(*) FROM announcements WHERE application_id = ANY(:ids) "
                                           "AND finalized_at IS NULL"), {"ids": list(app_ids)})
            return n == len(app_ids)

        await eventually(announced, what="30 announcements under notice")
        second_app = create_app(s)
        async with running(second_app) as second:

            async def all_final() -> bool:
                return {r.json["application_id"] for r in hook.of_type("award.finalized")} >= app_ids

            await eventually(all_final, timeout_s=s.notice_period_seconds + 10, what="30 award.finalized webhooks")
            await wait_until_quiet(notify, second)  # a double finalisation would be in the outbox by now
        finals = [r.json["application_id"] for r in hook.of_type("award.finalized")]
        assert sorted(finals) == sorted(app_ids)
        assert len(hook.of_type("award.decided")) == 30
        async with notify_db.connect() as conn:
            counts = dict((await conn.execute(
                text("SELECT subject, count(*) FROM outbox WHERE type = 'award.finalized' "
                     "AND subject = ANY(:ids) GROUP BY subject"), {"ids": list(app_ids)})).all())
            deliveries = await conn.scalar(
                text("SELECT count(*) FROM deliveries WHERE event_type = 'award.finalized' "
                     "AND application_id = ANY(:ids)"), {"ids": list(app_ids)})
        assert counts == dict.fromkeys(app_ids, 1)
        assert deliveries == 30


async def test_in_flight_delivery_survives_a_dispatcher_restart(settings: Settings) -> None:
    s = settings.model_copy(update={"webhook_backoff_seconds": 0.05, "webhook_attempts_max": 3,
                                    "allow_private_callbacks": True})
    answer = {"status": HANG}
    async with scratch_schema(s) as maker, scripted_receiver(lambda n: answer["status"]) as hook:
        async with maker() as session, session.begin():
            await session.execute(
                text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES ('ptn_r', 'p', :u, :h)"),
                {"u": hook.url, "h": secrets.token_hex(32)})
            await SqlNotifyRepository(session).add_deliveries([delivery_for(
                uuid.uuid4(), "award.decided", "app_r", "ptn_r", {})])
        first = Dispatcher(maker, s, timeout_s=30.0, poll_s=0.02)
        task = asyncio.create_task(first.run())

        async def in_flight() -> bool:
            return len(hook.requests) == 1

        await eventually(in_flight, what="the first request")
        started = time.monotonic()
        first.stop()
        await asyncio.wait_for(task, timeout=5)
        assert time.monotonic() - started < 3, "the dispatcher did not stop promptly"
        async with maker() as session:
            row = (await session.execute(text(
                "SELECT status, attempts, claim_token, next_attempt_at <= now() AS due FROM deliveries"))).one()
        assert (row.status, row.attempts, row.claim_token, row.due) == ("pending", 0, None, True)

        answer["status"] = 200
        second = Dispatcher(maker, s, timeout_s=5.0, poll_s=0.02)
        task = asyncio.create_task(second.run())
        try:
            async def delivered() -> Any:
                async with maker() as session:
                    return await session.scalar(text("SELECT 1 FROM deliveries WHERE status = 'delivered'"))

            await eventually(delivered, what="delivery after the restart")
        finally:
            second.stop()
            await asyncio.wait_for(task, timeout=5)
        assert len(hook.requests) == 2 and hook.requests[0].body == hook.requests[1].body


async def test_background_tasks_survive_a_database_outage(settings: Settings) -> None:
    """Both tasks start against an unreachable database, keep retrying, and work once it is back."""
    s = settings.model_copy(update={"allow_private_callbacks": True})
    dead_engine = make_engine("postgresql://postgres@127.0.0.1:1/none", "notify")
    dead = make_sessionmaker(dead_engine)
    async with scratch_schema(s) as maker, scripted_receiver() as hook:
        async with maker() as session, session.begin():
            await session.execute(
                text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES ('ptn_o', 'p', :u, :h)"),
                {"u": hook.url, "h": secrets.token_hex(32)})
            await SqlNotifyRepository(session).add_deliveries([delivery_for(
                uuid.uuid4(), "award.revoked", "app_o", "ptn_o", {})])
            await session.execute(text(
                "INSERT INTO announcements (id, application_id, decided_event_id, correlation_id, partner_id, "
                "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
                "published_event_id) VALUES ('ann_o2', 'app_o2', gen_random_uuid(), 'c', 'ptn_o', '91310115MA00000000', "
                "'n', 'GT-PCT', 2024, 's', 100, now(), now(), gen_random_uuid())"))
        dispatcher = Dispatcher(dead, s, poll_s=0.02)
        finaliser = Finaliser(dead, poll_s=0.02)
        tasks = [asyncio.create_task(dispatcher.run()), asyncio.create_task(finaliser.run())]
        try:
            # Time must pass by design: the tasks meet the dead database for a while (several
            # polls and retries), and must still be running at the end of it.
            await asyncio.sleep(1.0)
            assert not any(t.done() for t in tasks), "a background task died with the database"
            dispatcher._maker = maker  # the database is back
            finaliser._maker = maker

            async def recovered() -> bool:
                async with maker() as session:
                    finals = await session.scalar(text("SELECT count(*) FROM outbox WHERE type = 'award.finalized'"))
                return bool(finals == 1 and hook.of_type("award.revoked") and hook.of_type("award.finalized"))

            await eventually(recovered, timeout_s=15, what="work after the outage")
        finally:
            dispatcher.stop()
            finaliser.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
            await dead_engine.dispose()
