"""Catalog versions (CONTRACT.md, "Policy administration"): the shipped catalog is the first
version, published once however often eligibility starts; admins publish more, content-addressed,
idempotently (also two at once); a document that breaks the schema is refused naming each bad path,
leaving nothing; every new version goes out as `catalog.published` on grantline.policy."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from services.eligibility.app import create_app as create_eligibility
from shared.config.settings import Settings
from shared.contracts.topics import POLICY
from shared.policy.catalog import catalog_version_of
from tests.support.apps import running
from tests.support.auth import AUD, OP
from tests.support.eligibility import eligibility_db, outbox_events, successor_document
from tests.support.kafka import read_topic
from tests.support.paging import read_pages
from tests.support.policy import shipped_document

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def eligibility(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_eligibility(settings)) as client:
        yield client


async def publish(client: httpx.AsyncClient, document: Any, note: str | None = "tests",
                  headers: dict[str, str] = OP) -> httpx.Response:
    body: dict[str, Any] = {"document": document}
    if note is not None:
        body["note"] = note
    return await client.post("/v1/catalog/versions", json=body, headers=headers)


async def every_version(client: httpx.AsyncClient, page_size: int = 50) -> list[dict[str, Any]]:
    return [item for page in await read_pages(client, "/v1/catalog/versions", page_size, {}) for item in page]


async def stored(settings: Settings) -> tuple[int, int]:
    """(catalog versions, catalog.published events) in eligibility's tables."""
    async with eligibility_db(settings) as conn:
        versions = await conn.scalar(text("SELECT count(*) FROM catalog_versions"))
        events = await conn.scalar(text("SELECT count(*) FROM outbox WHERE type = 'catalog.published'"))
    return int(versions or 0), int(events or 0)


async def test_the_shipped_catalog_is_the_first_version_published_once_however_often_eligibility_starts(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    shipped = shipped_document()
    version = catalog_version_of(shipped)
    async with running(create_eligibility(settings)):  # a second start (another instance, or a restart)
        pass
    r = await eligibility.get(f"/v1/catalog/versions/{version}")
    assert r.status_code == 200
    assert r.json() == shipped
    assert list(r.json()) == list(shipped)  # as published: the keys in the publisher's order
    listing = await every_version(eligibility)
    assert listing[-1] == {"version": version, "published_at": listing[-1]["published_at"],
                           "published_by": {"id": "system"}, "note": "the catalog shipped with Grantline"}
    async with eligibility_db(settings) as conn:
        events = [e for e in await outbox_events(conn, "catalog.published") if e["subject"] == version]
    assert len(events) == 1
    assert events[0]["key"] == version and events[0]["data"]["document"] == shipped
    assert events[0]["data"]["published_by"] == {"id": "system"}


async def test_a_document_published_twice_is_one_version_and_one_event(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    document = successor_document(revision=1001)
    first = await publish(eligibility, document, note="2026年度继任政策")
    assert first.status_code == 201, first.text
    version = first.json()["version"]
    assert first.json() == {"version": catalog_version_of(document)}
    again = await publish(eligibility, copy.deepcopy(document), note="another note")
    assert (again.status_code, again.json()) == (200, {"version": version})

    latest = (await eligibility.get("/v1/catalog")).json()
    assert latest["version"] == version and latest["document"] == document and latest["published_at"]
    assert (await eligibility.get(f"/v1/catalog/versions/{version}")).json() == document
    listed = next(v for v in await every_version(eligibility) if v["version"] == version)
    assert listed["published_by"] == {"id": "operator"} and listed["note"] == "2026年度继任政策"

    async with eligibility_db(settings) as conn:
        [event] = [e for e in await outbox_events(conn, "catalog.published") if e["subject"] == version]
    assert event["key"] == version
    assert event["data"] == {"version": version, "published_at": listed["published_at"],
                             "published_by": {"id": "operator"}, "note": "2026年度继任政策", "document": document}
    on_the_wire = await read_topic(settings.kafka_bootstrap_servers, settings.topic_namespace + POLICY,
                                   lambda ms: any(m.key == version.encode() for m in ms))
    [message] = [m for m in on_the_wire if m.key == version.encode()]
    assert message.value is not None and orjson.loads(message.value)["id"] == event["id"]


async def test_two_admins_publishing_at_once_both_succeed(eligibility: httpx.AsyncClient, settings: Settings) -> None:
    same = successor_document(revision=2001)
    answers = await asyncio.gather(*(publish(eligibility, same) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert {a.json()["version"] for a in answers} == {catalog_version_of(same)}

    one, other = successor_document(revision=2002), successor_document(revision=2003)
    both = await asyncio.gather(publish(eligibility, one), publish(eligibility, other))
    assert [b.status_code for b in both] == [201, 201]
    assert [b.json()["version"] for b in both] == [catalog_version_of(one), catalog_version_of(other)]

    async with eligibility_db(settings) as conn:
        events = await outbox_events(conn, "catalog.published")
        rows = await conn.scalar(text("SELECT count(*) FROM catalog_versions WHERE version = :v"),
                                 {"v": catalog_version_of(same)})
    assert rows == 1
    assert [e["subject"] for e in events].count(catalog_version_of(same)) == 1


async def test_a_document_that_breaks_the_schema_is_refused_naming_each_bad_path_and_leaves_nothing(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    before = await stored(settings)
    broken = successor_document(revision=3001)
    broken["programs"][3]["formula"]["rate_bp"] = "50%"
    del broken["programs"][0]["window"]["citation"]
    broken["programs"][5]["bogus"] = True
    r = await publish(eligibility, broken)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in r.json()["errors"]]
    assert set(fields) == {"document.programs[3].formula.rate_bp", "document.programs[0].window",
                           "document.programs[5]"}
    for document in ([], "catalog", {"catalog": "x"}):
        refused = await publish(eligibility, document)
        assert refused.status_code == 422, document
        assert all(e["field"].startswith("document") for e in refused.json()["errors"])
    unknown_key = await eligibility.post("/v1/catalog/versions", json={"document": successor_document(), "x": 1},
                                         headers=OP)
    assert unknown_key.status_code == 422 and unknown_key.json()["errors"][0]["field"] == "x"
    assert (await publish(eligibility, successor_document(3002), note="")).status_code == 422
    assert await stored(settings) == before


async def test_a_document_holding_what_cannot_be_stored_is_refused_naming_where(
    eligibility: httpx.AsyncClient, settings: Settings,
) -> None:
    before = await stored(settings)
    document = successor_document(revision=3101)
    document["programs"][0]["window"]["text"] = "2026\x00年度"
    document["revision"] = 2**70
    r = await publish(eligibility, document)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["document.revision", "document.programs[0].window.text"]
    raw = orjson.dumps({"document": successor_document(revision=3102)}).decode()
    for bad, field in ((raw.replace('"revision":3102', '"revision":NaN'), "document.revision"),
                       (raw.replace('"catalog":"', '"catalog":"\\ud800'), "document.catalog")):
        refused = await eligibility.post("/v1/catalog/versions", content=bad.encode(),
                                         headers={**OP, "content-type": "application/json"})
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert await stored(settings) == before


async def test_only_admins_publish_and_anyone_reads(eligibility: httpx.AsyncClient, settings: Settings) -> None:
    before = await stored(settings)
    document = successor_document(revision=4001)
    assert (await publish(eligibility, document, headers={})).status_code == 401
    assert (await publish(eligibility, document, headers=AUD)).status_code == 403
    assert await stored(settings) == before
    for path in ("/v1/catalog", "/v1/catalog/versions", f"/v1/catalog/versions/{catalog_version_of(shipped_document())}"):
        assert (await eligibility.get(path)).status_code == 200, path


async def test_versions_are_listed_newest_first_a_page_at_a_time(eligibility: httpx.AsyncClient) -> None:
    published = []
    for revision in (5001, 5002, 5003):
        r = await publish(eligibility, successor_document(revision))
        assert r.status_code == 201
        published.append(r.json()["version"])
    first = await eligibility.get("/v1/catalog/versions", params={"limit": 2})
    assert [v["version"] for v in first.json()["items"]] == published[::-1][:2]
    assert first.json()["next_cursor"]
    every = [v["version"] for v in await every_version(eligibility, page_size=2)]
    assert every[:3] == published[::-1]
    assert every[-1] == catalog_version_of(shipped_document())
    assert len(every) == len(set(every))
    bad = await eligibility.get("/v1/catalog/versions", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert (await eligibility.get("/v1/catalog/versions", params={"limit": 201})).status_code == 422
    assert (await eligibility.get("/v1/catalog/versions/sha256:" + "0" * 64)).status_code == 404
    assert (await eligibility.get("/v1/catalog/versions/not-a-version")).status_code == 404
