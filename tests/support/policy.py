"""Calls for applications in tests: every application needs an open call for its program and year.

* With eligibility running, open them as an admin does: ``open_call`` (POST /v1/calls), or
  ``open_sample_calls`` for a call per program and support year of the shipped catalog (the years
  and event dates tools/samples.py uses), each open from the past far into the future.
* With intake alone, publish what eligibility would: ``publish_policy`` puts catalog.published and
  call.opened (and call.closed) on the settings' namespaced grantline.policy; ``publish_sample_calls``
  the sample calls.
* Either way, ``wait_for_calls`` waits until intake shows the calls open on GET /v1/programs (its
  in-memory view, which lists a call only once its catalog version is there too): from then on
  intake admits applications under them.

``*_sync`` variants serve the tests that drive the services as processes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.config.settings import Settings
from shared.contracts.events import (
    Actor,
    CallClosed,
    CallOpened,
    CatalogPublished,
    EventWindow,
    new_typed_event,
)
from shared.contracts.topics import POLICY
from shared.policy.catalog import CATALOG_PATH, catalog_version_of, load_catalog
from tests.support.auth import OP
from tests.support.kafka import publish
from tests.support.waiting import eventually

OPEN_FROM = "2020-01-01T00:00:00+08:00"
OPEN_UNTIL = "2100-01-01T00:00:00+08:00"
ELIGIBILITY = "grantline.eligibility"
OPERATOR = Actor(id="operator")


def sample_terms() -> list[tuple[str, int]]:
    """(program, year) for every program of the shipped catalog and every support year it admits."""
    return [
        (code, year)
        for code, program in load_catalog().programs.items()
        for year in range(program.window.first_year, program.window.last_year + 1)
    ]


def call_body(program: str, year: int, *, opens_at: str = OPEN_FROM, closes_at: str = OPEN_UNTIL,
              event_window: tuple[str, str] | None = None, catalog_version: str | None = None,
              budget: str | None = None, title: str | None = None) -> dict[str, Any]:
    """POST /v1/calls's body; the event window defaults to the program's in the shipped catalog."""
    if event_window is None:
        window = load_catalog().programs[program].window
        event_window = (window.start.isoformat(), window.end.isoformat())
    body: dict[str, Any] = {
        "program": program, "year": year, "title": title or f"{year}年度 {program}",
        "opens_at": opens_at, "closes_at": closes_at,
        "event_window": {"from": event_window[0], "to": event_window[1]},
    }
    if catalog_version is not None:
        body["catalog_version"] = catalog_version
    if budget is not None:
        body["budget"] = budget
    return body


# ------------------------------------------------------------------------ through eligibility


async def open_call(eligibility: httpx.AsyncClient, program: str, year: int, *,
                    headers: dict[str, str] = OP, **terms: Any) -> dict[str, Any]:
    """A call opened through eligibility's API (`terms`: those of `call_body`); its 201 body."""
    r = await eligibility.post("/v1/calls", json=call_body(program, year, **terms), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def open_sample_calls(eligibility: httpx.AsyncClient, intake: httpx.AsyncClient) -> list[dict[str, Any]]:
    """A call for every sample (program, year), open until long after the test; waits for intake."""
    calls = [await open_call(eligibility, program, year) for program, year in sample_terms()]
    await wait_for_calls(intake, {c["id"] for c in calls})
    return calls


def open_sample_calls_sync(eligibility_url: str, intake_url: str) -> list[dict[str, Any]]:
    """`open_sample_calls` against services run as processes."""

    async def go() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=eligibility_url, timeout=30) as eligibility, \
                httpx.AsyncClient(base_url=intake_url, timeout=30) as intake:
            return await open_sample_calls(eligibility, intake)

    return asyncio.run(go())


# ------------------------------------------------------------------------ without eligibility


def shipped_document() -> dict[str, Any]:
    return dict(json.loads(CATALOG_PATH.read_text(encoding="utf-8")))


def call_opened(program: str, year: int, *, catalog_version: str | None = None, call_id: str | None = None,
                opens_at: str = OPEN_FROM, closes_at: str = OPEN_UNTIL,
                event_window: tuple[str, str] | None = None, budget: str | None = None,
                title: str | None = None) -> CallOpened:
    """call.opened's data as eligibility writes it (by default under the shipped catalog's version)."""
    body = call_body(program, year, opens_at=opens_at, closes_at=closes_at, event_window=event_window,
                     budget=budget, title=title)
    extra = {"budget": budget} if budget is not None else {}
    return CallOpened(
        id=call_id or "call_" + uuid.uuid4().hex[:20], program=program, year=year, title=body["title"],
        opens_at=opens_at, closes_at=closes_at,
        event_window=EventWindow.model_validate(body["event_window"]),
        catalog_version=catalog_version or catalog_version_of(shipped_document()),
        opened_by=OPERATOR, opened_at=datetime.now(UTC).isoformat(), **extra,
    )


def call_closed(call: CallOpened, closes_at: datetime, reason: str = "closed by the test") -> CallClosed:
    return CallClosed(id=call.id, program=call.program, year=call.year, closes_at=closes_at.isoformat(),
                      closed_by=OPERATOR, reason=reason)


async def publish_policy(settings: Settings, calls: Sequence[CallOpened | CallClosed] = (), *,
                         document: dict[str, Any] | None = None) -> str:
    """catalog.published for `document` (default: the shipped catalog), then `calls` in order, on
    the settings' namespaced grantline.policy, keyed as eligibility keys them; the version."""
    document = document if document is not None else shipped_document()
    version = catalog_version_of(document)
    published = CatalogPublished(version=version, published_at=datetime.now(UTC).isoformat(),
                                 published_by=OPERATOR, document=document)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await publish(producer, settings, POLICY,
                      new_typed_event(published, source=ELIGIBILITY, subject=version), key=version)
        for data in calls:
            event = new_typed_event(data, source=ELIGIBILITY, subject=data.id)
            await publish(producer, settings, POLICY, event, key=data.program)
    finally:
        await producer.stop()
    return version


async def publish_sample_calls(settings: Settings, intake: httpx.AsyncClient) -> list[CallOpened]:
    """A call for every sample (program, year) published on grantline.policy; waits for intake."""
    calls = [call_opened(program, year) for program, year in sample_terms()]
    await publish_policy(settings, calls)
    await wait_for_calls(intake, {c.id for c in calls})
    return calls


# ----------------------------------------------------------------------------------- waiting


async def open_call_ids(intake: httpx.AsyncClient) -> set[str]:
    """The calls intake shows open now (GET /v1/programs)."""
    r = await intake.get("/v1/programs")
    if r.status_code != 200:
        return set()
    return {call["id"] for item in r.json()["items"] for call in item["calls"]}


async def wait_for_calls(intake: httpx.AsyncClient, call_ids: Collection[str], *, is_open: bool = True,
                         timeout_s: float = 30) -> None:
    """Until intake shows every one of `call_ids` open (or, `is_open=False`, none of them)."""
    wanted = set(call_ids)

    async def shown() -> set[str]:
        return await open_call_ids(intake) & wanted

    await eventually(shown, f"intake showing calls {'open' if is_open else 'closed'}", timeout_s=timeout_s,
                     every_s=0.05, until=lambda seen: seen == (wanted if is_open else set()))
