"""Eligibility's assessing over an in-memory store (no database): what a batch dead-letters, which
copy of an application stands, that only the receipts kept are published, each caused by
its `application.received`, and that an application is assessed under the call it names."""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from services.eligibility.domain import Assessed
from services.eligibility.handlers import assess_applications
from shared.contracts.envelope import Event, new_event
from shared.policy.catalog import catalog_version_of, load_catalog
from shared.policy.validation import validate_application
from tools.samples import make_body


class FakeAssessmentStore:
    """The receipts as a dict, with the database's rule: an application's first receipt stands;
    the calls and catalog documents as dicts, with what was asked of them."""

    def __init__(self, *assessed_already: str) -> None:
        self.receipts: dict[str, dict[str, Any]] = {a: {} for a in assessed_already}
        self.events: list[tuple[Event, str]] = []
        self.call_rows: dict[str, dict[str, Any]] = {}
        self.document_rows: dict[str, dict[str, Any]] = {}
        self.reads: list[str] = []

    async def calls(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        self.reads.append("calls")
        return {i: self.call_rows[i] for i in ids if i in self.call_rows}

    async def documents(self, versions: Collection[str]) -> dict[str, dict[str, Any]]:
        self.reads.append("documents")
        return {v: self.document_rows[v] for v in versions if v in self.document_rows}

    async def store_assessments(self, batch: Sequence[Assessed]) -> set[str]:
        stored = {a.application_id for a in batch if a.application_id not in self.receipts}
        for a in batch:
            self.receipts.setdefault(a.application_id, a.receipt)
        return stored

    async def add_events(self, events: Iterable[tuple[Event, str]]) -> None:
        self.events.extend(events)


class DeadLetters(list[tuple[Event, str]]):
    def __call__(self, event: Event, error: BaseException | str) -> None:
        self.append((event, str(error)))


def received(app_id: str, program: str = "GT-EQUITY") -> Event:
    application, errors = validate_application(make_body(program), load_catalog())
    assert application is not None, errors
    return new_event("application.received", source="tests", subject=app_id,
                     data={"application_id": app_id, "partner_id": "ptn_t", "application": application.to_wire()})


async def assess(store: FakeAssessmentStore, *events: Event) -> DeadLetters:
    dead = DeadLetters()
    await assess_applications(store, list(events), dead)
    return dead


async def test_malformed_events_are_dead_lettered_and_the_rest_assessed() -> None:
    store = FakeAssessmentStore()
    no_ids = new_event("application.received", source="tests", subject="x", data={"application_id": 7})
    good = received("app_a")
    invalid = new_event("application.received", source="tests", subject="app_b",
                        data={**good.data, "application_id": "app_b",
                              "application": {**good.data["application"], "program": "NO-SUCH"}})
    dead = await assess(store, no_ids, good, invalid)
    assert [e for e, _ in dead] == [no_ids, invalid]
    assert dead[0][1].startswith("application.received: data.")
    assert list(store.receipts) == ["app_a"]
    assert [e.subject for e, _ in store.events] == ["app_a"]


async def test_the_first_copy_in_a_batch_stands_and_only_kept_receipts_are_published() -> None:
    store = FakeAssessmentStore("app_before")
    first = received("app_a")
    copy = new_event("application.received", source="tests", subject="app_a", data=first.data)
    dead = await assess(store, first, copy, received("app_before"), received("app_c", "GT-PCT"))
    assert dead == []
    assert store.receipts["app_a"]["received_at"] == first.time.isoformat()
    published = {e.subject: e for e, _ in store.events}
    assert list(published) == ["app_a", "app_c"]
    assert published["app_a"].causation_id == str(first.id)


async def test_the_published_event_carries_the_receipt_under_the_applicants_key() -> None:
    store = FakeAssessmentStore()
    event = received("app_a")
    await assess(store, event)
    [(assessed, key)] = store.events
    assert assessed.type == "application.assessed"
    assert key == event.data["application"]["applicant"]["id"]
    assert orjson.dumps(assessed.data) == orjson.dumps(store.receipts["app_a"])
    assert assessed.data["application_id"] == "app_a" and assessed.data["partner_id"] == "ptn_t"


async def test_a_batch_of_only_malformed_events_stores_nothing() -> None:
    store = FakeAssessmentStore()
    dead = await assess(store, new_event("application.received", source="tests", subject="x", data={}))
    assert len(dead) == 1
    assert store.receipts == {} and store.events == []


def call_row(call_id: str, catalog_version: str, program: str = "GT-EQUITY", year: int = 2024) -> dict[str, Any]:
    """A stored call open from 2024 to 2030 for events of the program's window."""
    return {"id": call_id, "program": program, "year": year, "opens_at": datetime(2024, 1, 1, tzinfo=UTC),
            "closes_at": datetime(2030, 1, 1, tzinfo=UTC), "event_from": date(2023, 8, 31),
            "event_to": date(2025, 12, 31), "catalog_version": catalog_version, "budget_fen": None}


def under_call(app_id: str, call_id: str, program: str = "GT-EQUITY") -> Event:
    event = received(app_id, program)
    return new_event("application.received", source="tests", subject=app_id, data={**event.data, "call_id": call_id},
                     time=datetime.now(UTC) - timedelta(days=1))


async def test_history_without_a_call_reads_no_call_and_no_document() -> None:
    store = FakeAssessmentStore()
    assert await assess(store, received("app_a")) == []
    assert store.reads == []  # the shipped catalog, as before calls


async def test_an_application_is_assessed_under_the_call_it_names() -> None:
    store = FakeAssessmentStore()
    store.call_rows["call_1"] = call_row("call_1", load_catalog().version)
    dead = await assess(store, under_call("app_a", "call_1"))
    assert dead == []
    assert store.receipts["app_a"]["call_id"] == "call_1"
    assert store.receipts["app_a"]["catalog_version"] == load_catalog().version
    assert store.reads == ["calls"]  # one read for the batch; the shipped version is compiled already


async def test_a_call_pinning_another_version_is_assessed_under_that_version_compiled_once() -> None:
    document = copy.deepcopy(load_catalog().raw)
    document["revision"] = 99
    version = catalog_version_of(document)
    store = FakeAssessmentStore()
    store.document_rows[version] = document
    store.call_rows["call_2"] = call_row("call_2", version)
    assert await assess(store, under_call("app_a", "call_2"), under_call("app_b", "call_2")) == []
    assert {store.receipts[a]["catalog_version"] for a in ("app_a", "app_b")} == {version}
    assert await assess(store, under_call("app_c", "call_2")) == []
    assert store.reads == ["calls", "documents", "calls"]  # the version is read once per process


async def test_an_application_naming_an_unknown_call_is_dead_lettered_alone() -> None:
    store = FakeAssessmentStore()
    stray = under_call("app_a", "call_unknown")
    dead = await assess(store, stray, received("app_b"))
    assert [(e, message) for e, message in dead] == [(stray, "application.received: unknown call call_unknown")]
    assert list(store.receipts) == ["app_b"]
