"""Poison messages on every topic a service consumes: a non-JSON message, a JSON value that is
not an envelope, and an envelope whose data is malformed for that consumer are each dead-lettered
(an `event.dead_lettered` row on `grantline.dlq` in the consumer's own outbox), and the consumer
goes on: the valid events produced after the poison are applied.

The four services run in process together with their own lifespans. Every poison kind is sent to
every partition of its topic, so whatever partition the valid events land on, they come after
poison there.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS, ASSESSMENTS, AWARDS, DLQ, PARTNERS
from shared.db.engine import make_engine
from tests.support.apps import running_services
from tests.support.auth import OP, partner_headers
from tests.support.intake import new_partner
from tests.support.policy import open_sample_calls
from tests.support.waiting import eventually
from tools.samples import make_body

pytestmark = pytest.mark.integration

CALLBACK = "http://127.0.0.1:9/hook"  # the discard port: webhook attempts fail fast, and are not under test

# consumer → the topics it reads (what the services subscribe to; `partners` keeps the directory
# of partners and staff)
CONSUMERS: dict[str, tuple[str, ...]] = {
    "eligibility.assess": (APPLICATIONS,),
    "eligibility.partners": (PARTNERS,),
    "ledger.decide": (ASSESSMENTS,),
    "ledger.partners": (PARTNERS,),
    "intake.status": (ASSESSMENTS, AWARDS, ANNOUNCEMENTS),
    "notify.awards": (AWARDS,),
    "notify.partners": (PARTNERS,),
}
KINDS = ("not-json", "not-an-envelope", "malformed-data")


@pytest.fixture(scope="module")
def poison_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allow_private_callbacks": True, "webhook_attempts_max": 1, "partner_rate_per_second": 0.0}
    )


@pytest.fixture(scope="module")
async def stack(poison_settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with running_services(poison_settings) as clients:
        await open_sample_calls(clients["eligibility"], clients["intake"])
        yield clients


async def query(settings: Settings, schema: str, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(settings.database_url, schema)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def submit(intake: httpx.AsyncClient, partner: dict[str, Any], subject: str) -> str:
    body = make_body("GT-EQUITY", subject=subject)
    r = await intake.post("/v1/applications", json=body, headers=partner_headers(partner, str(uuid.uuid4())))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def settled(intake: httpx.AsyncClient, app_id: str) -> dict[str, Any]:
    """The application once it is decided and announced (every stage and every topic went by)."""

    async def check() -> dict[str, Any] | None:
        body = (await intake.get(f"/v1/applications/{app_id}", headers=OP)).json()
        done = body.get("status") in ("approved", "partially_approved") and (body.get("announcement") or {}).get(
            "published_at"
        )
        return body if done else None

    return await eventually(check, f"{app_id} decided and announced", timeout_s=45)


def malformed(topic: str, token: str, app_id: str) -> Event:
    """An envelope of a type the topic's consumers handle, with data they cannot use."""
    if topic == APPLICATIONS:  # no `application` to assess
        return new_event("application.received", source="poison", subject=token,
                         data={"application_id": token, "partner_id": "ptn_x"})
    if topic == ASSESSMENTS:  # not a receipt the ledger can decide on; not an amount intake can show
        return new_event("application.assessed", source="poison", subject=app_id,
                         data={"application_id": app_id, "eligible": True, "entitlement": "abc", "reasons": [],
                               "note": token})
    if topic == AWARDS:  # no application_id, no partner_id, an unknown status and amount
        return new_event("award.decided", source="poison", subject=app_id,
                         data={"status": "bogus", "entitlement": "abc", "awarded": "abc", "note": token})
    if topic == ANNOUNCEMENTS:  # times that are not times
        return new_event("announcement.published", source="poison", subject=app_id,
                         data={"application_id": app_id, "published_at": 12, "notice_ends_at": "never",
                               "note": token})
    if topic == PARTNERS:  # no name, callback or key hash
        return new_event("partner.registered", source="poison", subject=token, data={"partner_id": token})
    raise AssertionError(topic)


async def produce_poison(settings: Settings, token: str, app_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for topic in (APPLICATIONS, ASSESSMENTS, AWARDS, ANNOUNCEMENTS, PARTNERS):
            name = settings.topic_namespace + topic
            partitions = await producer.partitions_for(name)
            assert partitions, name
            for partition in sorted(partitions):
                for kind in KINDS:
                    if kind == "not-json":
                        value = f"not json {token} \x00\xff".encode("utf-8", "surrogateescape")
                    elif kind == "not-an-envelope":
                        value = orjson.dumps({"token": token, "type": "application.received", "data": []})
                    else:
                        value = malformed(topic, token, app_id).to_bytes()
                    await producer.send_and_wait(name, value, key=token.encode(), partition=partition)
    finally:
        await producer.stop()


async def dead_letters(
    settings: Settings, token: str, errors: dict[str, set[str]] | None = None
) -> Counter[tuple[str, str]]:
    """(consumer, topic) → how many of this test's poison messages each service dead-lettered;
    `errors` collects, per consumer, the error classes given for the malformed envelopes."""
    found: Counter[tuple[str, str]] = Counter()
    for schema in ("intake", "eligibility", "ledger", "notify"):
        rows = await query(
            settings, schema,
            "SELECT envelope FROM outbox WHERE topic = :t AND type = 'event.dead_lettered'", t=DLQ,
        )
        for (envelope,) in rows:
            data = envelope["data"]
            original = base64.b64decode(data.get("original_b64") or "")
            if token.encode() in original:
                topic = str(data["topic"]).removeprefix(settings.topic_namespace)
                found[(str(data["consumer"]), topic)] += 1
                if errors is not None and b'"source":"poison"' in original:
                    errors.setdefault(str(data["consumer"]), set()).add(str(data["error"]).split(":")[0])
    return found


async def test_poison_on_every_topic_is_dead_lettered_and_every_consumer_goes_on(
    stack: dict[str, httpx.AsyncClient], poison_settings: Settings
) -> None:
    settings = poison_settings
    intake = stack["intake"]
    partner = await new_partner(intake, "Before the poison", CALLBACK)
    first = await submit(intake, partner, "ROUND-BEFORE")
    before = await settled(intake, first)

    token = "poison-" + secrets.token_hex(6)
    await produce_poison(settings, token, first)

    # Valid events after the poison: a partner (partners topic), an application through every stage.
    later_partner = await new_partner(intake, "After the poison", CALLBACK)
    second = await submit(intake, later_partner, "ROUND-AFTER")
    after = await settled(intake, second)
    assert [e["type"] for e in after["timeline"]][:1] == ["application.received"]
    assert {"application.assessed", "award.decided", "announcement.published"} <= {
        e["type"] for e in after["timeline"]
    }
    for schema in ("eligibility", "notify"):
        await eventually(
            lambda s=schema: query(settings, s, "SELECT 1 FROM partners WHERE id = :i", i=later_partner["id"]),
            f"{schema} learned the partner registered after the poison",
        )

    partitions = settings.topic_partitions
    expected = {
        (consumer, topic): len(KINDS) * partitions for consumer, topics in CONSUMERS.items() for topic in topics
    }

    async def all_dead_lettered() -> bool:
        found = await dead_letters(settings, token)
        return all(found[key] >= n for key, n in expected.items())

    try:
        await eventually(all_dead_lettered, "every poison message dead-lettered by every consumer")
    except AssertionError:
        found = await dead_letters(settings, token)
        missing = {k: (found[k], n) for k, n in expected.items() if found[k] < n}
        raise AssertionError(f"dead letters (found, expected) short for {missing}; all found: {dict(found)}") from None

    # Malformed data is named as such (a ValueError from the handler), not an accident further in.
    errors: dict[str, set[str]] = {}
    await dead_letters(settings, token, errors)
    handled = {c: e for c, e in errors.items() if not c.endswith(".partners")}
    assert handled and all(e == {"ValueError"} for e in handled.values()), errors

    # The poison changed nothing it must not: the first application's decision and announcement stand.
    again = (await intake.get(f"/v1/applications/{first}", headers=OP)).json()
    assert again["status"] == before["status"]
    assert again["decision"] == before["decision"]
    assert again["announcement"]["published_at"] == before["announcement"]["published_at"]
    for schema in ("eligibility", "notify", "intake"):
        rows = await query(settings, schema, "SELECT id FROM partners WHERE id = :i", i=token)
        assert rows == [], f"{schema} stored the malformed partner"


async def test_dead_letters_carry_the_error_and_the_original_bytes(
    stack: dict[str, httpx.AsyncClient], poison_settings: Settings
) -> None:
    settings = poison_settings
    token = "poison-" + secrets.token_hex(6)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    raw = f"{{not json {token}".encode()
    try:
        await producer.send_and_wait(settings.topic_namespace + APPLICATIONS, raw, key=token.encode())
    finally:
        await producer.stop()

    async def row() -> Any:
        rows = await query(
            settings, "eligibility",
            "SELECT envelope FROM outbox WHERE topic = :t AND type = 'event.dead_lettered' "
            "AND envelope->'data'->>'original' LIKE :like", t=DLQ, like=f"%{token}%",
        )
        return rows[0][0] if rows else None

    envelope = await eventually(row, "the dead letter")
    data = envelope["data"]
    assert data["consumer"] == "eligibility.assess"
    assert data["topic"] == settings.topic_namespace + APPLICATIONS
    assert base64.b64decode(data["original_b64"]) == raw
    assert data["error"] and isinstance(data["offset"], int)
