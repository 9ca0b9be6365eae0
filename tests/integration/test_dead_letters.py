"""Operators see and re-drive dead letters (shared/deadletters.py), against real PostgreSQL and a
real broker: a service app with a consumer whose handler fails while an event's cause is not
fixed parks the event; `GET /v1/dead-letters` lists it; `POST /v1/dead-letters/{id}/redrive`
records who and why, puts the original back on its topic through the outbox, and the consumer,
once the cause is fixed, applies it exactly once."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import APPLICATIONS
from shared.db.engine import make_engine
from shared.messaging.consumer import Subscription, per_event
from shared.messaging.producer import make_producer
from shared.web.app import create_service_app
from shared.web.auth import hash_secret
from shared.web.context import ServiceContext
from tests.support.apps import healthy, running
from tests.support.auth import AUD, OP
from tests.support.waiting import eventually, wait_until_quiet

pytestmark = pytest.mark.integration

CONSUMER = "eligibility.flaky"
PARTNER_KEY = "glk_" + secrets.token_urlsafe(16)

# Notes whose events fail in the handler: the test "fixes the cause" by taking a note out.
failing: set[str] = set()


async def apply_unless_failing(session: AsyncSession, event: Event) -> None:
    note = str(event.data.get("note"))
    if note in failing:
        raise RuntimeError(f"cause not fixed yet for {note}")
    await session.execute(
        text("INSERT INTO dl_effects (event_id, note) VALUES (:e, :n)"), {"e": event.id, "n": note}
    )


def flaky_subscription(ctx: ServiceContext) -> list[Subscription]:
    return [
        Subscription(
            name="flaky",
            topics=[APPLICATIONS],
            handle=per_event(apply_unless_failing, max_attempts=3),
            only_types=frozenset({"application.received"}),
        )
    ]


async def sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    engine = make_engine(settings.database_url, "eligibility")
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The shared service assembly (eligibility's schema) with one consumer that fails on demand."""
    await sql(settings, "CREATE TABLE dl_effects (event_id uuid NOT NULL, note text)")  # no unique key
    await sql(
        settings,
        "INSERT INTO partners (id, name, callback_url, api_key_hash) "
        "VALUES ('ptn_dl', 'P', 'https://p/h', :h)",
        h=hash_secret(PARTNER_KEY),
    )
    app = create_service_app(name="eligibility", settings=settings, subscriptions=flaky_subscription)
    async with running(app) as c:
        await eventually(lambda: healthy(c), "healthz")
        yield c


async def publish(settings: Settings, *values: bytes) -> None:
    producer = make_producer(settings.kafka_bootstrap_servers, "dead-letter-tests")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                settings.topic_namespace + APPLICATIONS, value, key=b"91310000DL0000001X"
            )
    finally:
        await producer.stop()


def received(note: str) -> Event:
    return new_event("application.received", source="tests", subject=f"app_{note}", data={"note": note})


async def dead_letters(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/dead-letters", params={"consumer": CONSUMER, **params}, headers=OP)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def parked(client: httpx.AsyncClient, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        return next((d for d in await dead_letters(client) if predicate(d)), None)

    return dict(await eventually(check, "dead letter listed"))


async def effects(settings: Settings, event_id: uuid.UUID) -> int:
    rows = await sql(settings, "SELECT count(*) FROM dl_effects WHERE event_id = :e", e=event_id)
    return int(rows[0][0])


async def test_a_parked_event_is_listed_and_redriven_once_and_applied_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = received(f"boom-{uuid.uuid4().hex[:6]}")
    failing.add(event.data["note"])
    await publish(settings, event.to_bytes())
    item = await parked(client, lambda d: d["original_event_id"] == str(event.id))
    assert item["consumer"] == CONSUMER
    assert item["topic"] == settings.topic_namespace + APPLICATIONS
    assert item["original_event_type"] == "application.received"
    assert "cause not fixed yet" in item["error"]
    assert item["redrive"] is None and item["dead_lettered_at"]
    assert await effects(settings, event.id) == 0

    # Who may look: operators and auditors; not partners, not strangers.
    by_auditor = await client.get("/v1/dead-letters", headers=AUD)
    assert by_auditor.status_code == 200 and item["id"] in {d["id"] for d in by_auditor.json()["items"]}
    partner = await client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {PARTNER_KEY}"})
    assert partner.status_code == 403 and partner.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/dead-letters")).status_code == 401
    other = await client.get("/v1/dead-letters", params={"consumer": "eligibility.nobody"}, headers=OP)
    assert other.status_code == 200 and other.json()["items"] == []

    # Only operators re-drive, and only with a reason.
    url = f"/v1/dead-letters/{item['id']}/redrive"
    assert (await client.post(url, json={"reason": "x"}, headers=AUD)).status_code == 403
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}):
        r = await client.post(url, json=body, headers=OP)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == ["reason"], r.text
    unknown = await client.post(f"/v1/dead-letters/{uuid.uuid4()}/redrive", json={"reason": "x"}, headers=OP)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"

    failing.discard(event.data["note"])  # the cause is fixed
    r = await client.post(url, json={"reason": "schema fix deployed (INC-42)"}, headers=OP)
    assert r.status_code == 202, r.text
    redrive = r.json()["redrive"]
    assert redrive["by"] == "operator" and redrive["reason"] == "schema fix deployed (INC-42)"
    assert redrive["event_id"] == str(event.id) and redrive["at"]
    rows = await sql(
        settings,
        "SELECT redriven_by, reason, consumer, original_event_id FROM redrives WHERE dead_letter_id = :d",
        d=uuid.UUID(item["id"]),
    )
    assert [tuple(row) for row in rows] == [("operator", "schema fix deployed (INC-42)", CONSUMER, event.id)]

    # Back on its topic through the outbox, applied by the consumer, once.
    await eventually(lambda: effects(settings, event.id), "the re-driven event applied")
    copy = await sql(settings, "SELECT topic, key, published_at FROM outbox WHERE id = :e", e=event.id)
    assert copy[0].topic == APPLICATIONS and copy[0].key == "91310000DL0000001X" and copy[0].published_at
    listed = next(d for d in await dead_letters(client) if d["id"] == item["id"])
    assert listed["redrive"] == redrive

    again = await client.post(url, json={"reason": "once more"}, headers=OP)
    assert again.status_code == 409 and "re-driven already" in again.json()["detail"]
    await publish(settings, event.to_bytes())  # a redelivery of the original is still a duplicate
    await wait_until_quiet(client)
    assert await effects(settings, event.id) == 1


async def test_poison_cannot_be_redriven(client: httpx.AsyncClient, settings: Settings) -> None:
    token = f"poison-{uuid.uuid4().hex}"
    await publish(settings, f"not json {token}".encode())
    item = await parked(client, lambda d: d["original_event_id"] is None and d["error"] and d["key"])
    r = await client.post(f"/v1/dead-letters/{item['id']}/redrive", json={"reason": "try"}, headers=OP)
    assert r.status_code == 409, r.text
    assert "not a Grantline event envelope" in r.json()["detail"]
    assert (
        await sql(settings, "SELECT 1 FROM redrives WHERE dead_letter_id = :d", d=uuid.UUID(item["id"])) == []
    )


async def test_an_event_that_parks_again_after_a_redrive_can_be_redriven_again(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = received(f"twice-{uuid.uuid4().hex[:6]}")
    failing.add(event.data["note"])
    await publish(settings, event.to_bytes())
    first = await parked(client, lambda d: d["original_event_id"] == str(event.id))
    r = await client.post(f"/v1/dead-letters/{first['id']}/redrive", json={"reason": "too early"}, headers=OP)
    assert r.status_code == 202, r.text
    second = await parked(
        client, lambda d: d["original_event_id"] == str(event.id) and d["id"] != first["id"]
    )
    failing.discard(event.data["note"])
    r = await client.post(
        f"/v1/dead-letters/{second['id']}/redrive", json={"reason": "fixed now"}, headers=OP
    )
    assert r.status_code == 202, r.text
    await eventually(lambda: effects(settings, event.id), "applied after the second re-drive")
    await wait_until_quiet(client)
    assert await effects(settings, event.id) == 1


async def test_listing_pages_newest_first(client: httpx.AsyncClient, settings: Settings) -> None:
    events = [received(f"page-{i}-{uuid.uuid4().hex[:6]}") for i in range(3)]
    failing.update(e.data["note"] for e in events)
    await publish(settings, *(e.to_bytes() for e in events))
    ids = {str(e.id) for e in events}
    await eventually(lambda: _count_listed(client, ids), "three dead letters listed", timeout_s=15)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/dead-letters", params=params, headers=OP)
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    times = [d["dead_lettered_at"] for d in seen]
    assert times == sorted(times, reverse=True) and len({d["id"] for d in seen}) == len(seen)
    assert ids <= {d["original_event_id"] for d in seen}
    bad = await client.get("/v1/dead-letters", params={"cursor": "nope"}, headers=OP)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    too_many = await client.get("/v1/dead-letters", params={"limit": 201}, headers=OP)
    assert too_many.status_code == 422


async def _count_listed(client: httpx.AsyncClient, ids: set[str]) -> bool:
    return ids <= {d["original_event_id"] for d in await dead_letters(client, limit=200)}
