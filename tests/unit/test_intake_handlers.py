"""Intake's status projection over an in-memory store (no database): what a batch dead-letters,
which applications it locks, what it leaves alone, and that each application is written once
with its events applied in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.intake.domain import ApplicationState
from services.intake.handlers import project_downstream
from shared.contracts.envelope import Event, new_event

OURS, OTHER = "app_ours", "app_other"


class FakeProjectionStore:
    """The applications' projected states as a dict, and a log of every call."""

    def __init__(self, *app_ids: str) -> None:
        self.states = {a: ApplicationState("received", 0, None) for a in app_ids}
        self.locked: list[list[str]] = []
        self.timeline: list[tuple[str, Event]] = []
        self.saved: list[dict[str, ApplicationState]] = []

    async def lock_states(self, app_ids: Sequence[str]) -> dict[str, ApplicationState]:
        self.locked.append(list(app_ids))
        return {a: self.states[a] for a in app_ids if a in self.states}

    async def add_timeline_entries(self, entries: Sequence[tuple[str, Event]]) -> None:
        self.timeline.extend(entries)

    async def save_states(self, states: Mapping[str, ApplicationState]) -> None:
        self.saved.append(dict(states))
        self.states.update(states)


class DeadLetters(list[tuple[Event, str]]):
    def __call__(self, event: Event, error: BaseException | str) -> None:
        self.append((event, str(error)))


def event(event_type: str, subject: str, data: dict[str, Any]) -> Event:
    return new_event(event_type, source="tests", subject=subject, data=data)


def assessed(app_id: str, eligible: Any = True, **data: Any) -> Event:
    return event("application.assessed", app_id, {"application_id": app_id, "eligible": eligible,
                                                  "entitlement": "1600000.00", "reasons": [], **data})


def decided(app_id: str, status: str = "approved", **data: Any) -> Event:
    return event("award.decided", app_id, {"application_id": app_id, "status": status, "entitlement": "1600000.00",
                                           "awarded": "1600000.00", "limited_by": None, "reasons": [], **data})


async def project(store: FakeProjectionStore, *events: Event) -> DeadLetters:
    dead = DeadLetters()
    await project_downstream(store, list(events), dead)
    return dead


async def test_malformed_data_is_dead_lettered_and_the_rest_of_the_batch_projected() -> None:
    store = FakeProjectionStore(OURS)
    bad_status = decided(OURS, status="maybe")
    bad_amount = assessed(OURS, entitlement="abc")
    bad_time = event("announcement.published", OURS, {"application_id": OURS, "published_at": 12})
    dead = await project(store, bad_status, assessed(OURS), bad_amount, bad_time, decided(OURS))
    assert [e for e, _ in dead] == [bad_status, bad_amount, bad_time]
    assert all(error.startswith(e.type + ": data.") for e, error in dead)
    assert store.states[OURS].status == "approved"
    assert [e.type for _, e in store.timeline] == ["application.assessed", "award.decided"]


async def test_a_type_the_projection_does_not_show_is_dead_lettered() -> None:
    store = FakeProjectionStore(OURS)
    stray = event("partner.registered", OURS, {"partner_id": "ptn_x", "name": "n", "callback_url": "u",
                                               "api_key_hash": "h"})
    dead = await project(store, stray)
    assert [e for e, _ in dead] == [stray]
    assert store.locked == [] and store.saved == []


async def test_each_application_is_locked_once_in_id_order_and_written_once() -> None:
    store = FakeProjectionStore("app_a", "app_b")
    await project(store, assessed("app_b"), assessed("app_a"), decided("app_b", "rejected"), decided("app_a"))
    assert store.locked == [["app_a", "app_b"]]
    assert len(store.saved) == 1 and list(store.saved[0]) == ["app_a", "app_b"]
    assert (store.states["app_a"].status, store.states["app_b"].status) == ("approved", "rejected")
    assert [a for a, _ in store.timeline] == ["app_b", "app_a", "app_b", "app_a"]


async def test_events_of_applications_that_are_not_ours_leave_no_trace() -> None:
    store = FakeProjectionStore(OURS)
    dead = await project(store, decided(OTHER), assessed(OURS, eligible=False))
    assert dead == []
    assert [a for a, _ in store.timeline] == [OURS]
    assert list(store.saved[0]) == [OURS] and store.states[OURS].status == "ineligible"

    only_foreign = FakeProjectionStore(OURS)
    await project(only_foreign, decided(OTHER))
    assert only_foreign.locked == [[OTHER]]
    assert only_foreign.timeline == [] and only_foreign.saved == []


async def test_without_an_application_id_the_subject_names_the_application() -> None:
    store = FakeProjectionStore(OURS)
    await project(store, event("award.revoked", OURS, {"reason": "fraud"}))
    assert store.locked == [[OURS]]
    state = store.states[OURS]
    assert state.status == "revoked"
    assert state.decision is not None and state.decision["reasons"][-1]["message"] == "fraud"


async def test_a_batch_of_only_malformed_events_touches_nothing() -> None:
    store = FakeProjectionStore(OURS)
    dead = await project(store, decided(OURS, status="maybe"), assessed(OURS, eligible="yes"))
    assert len(dead) == 2
    assert store.locked == [] and store.timeline == [] and store.saved == []


async def test_an_announcement_without_times_takes_the_event_time_and_a_null_stays_null() -> None:
    absent = event("announcement.published", OURS, {"application_id": OURS})
    store = FakeProjectionStore(OURS)
    await project(store, absent)
    assert store.states[OURS].announcement == {
        "id": None, "published_at": absent.time.isoformat(), "notice_ends_at": None, "objections_open": 0,
        "finalized_at": None,
    }
    null = event("announcement.published", OURS, {"application_id": OURS, "published_at": None})
    await project(store, null)
    announcement = store.states[OURS].announcement
    assert announcement is not None and announcement["published_at"] is None


async def test_an_objection_is_counted_and_its_objector_never_reaches_the_store() -> None:
    store = FakeProjectionStore(OURS)
    published = event("announcement.published", OURS, {"application_id": OURS, "announcement_id": "ann_1"})
    filed = event("objection.filed", OURS, {
        "objection_id": "obj_1", "announcement_id": "ann_1", "application_id": OURS, "name": "李四",
        "contact": "13800000000", "statement": "此项目不实", "filed_at": "2024-06-04T09:00:00+08:00",
    })
    assert await project(store, decided(OURS), published, filed) == []
    announcement = store.states[OURS].announcement
    assert announcement is not None and announcement["objections_open"] == 1
    assert [e.type for _, e in store.timeline] == ["award.decided", "announcement.published", "objection.filed"]
    kept = store.timeline[-1][1]
    assert kept.id == filed.id and "name" not in kept.data and "contact" not in kept.data
    assert "李四" not in repr((store.timeline, store.saved))
