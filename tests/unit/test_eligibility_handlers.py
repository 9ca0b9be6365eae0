"""Eligibility's assessing over an in-memory store (no database): what a batch dead-letters, which
copy of an application stands, and that only the receipts kept are published, each caused by
its `application.received`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from services.eligibility.domain import Assessed
from services.eligibility.handlers import assess_applications
from shared.contracts.envelope import Event, new_event
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from tools.samples import make_body


class FakeAssessmentStore:
    """The receipts as a dict, with the database's rule: an application's first receipt stands."""

    def __init__(self, *assessed_already: str) -> None:
        self.receipts: dict[str, dict[str, Any]] = {a: {} for a in assessed_already}
        self.events: list[tuple[Event, str]] = []

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
