"""The policy events (catalog.published, call.opened, call.closed) round-trip and refuse bad data."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.envelope import new_event
from shared.contracts.events import CallClosed, CallOpened, CatalogPublished, new_typed_event, parse_data
from shared.contracts.topics import POLICY, TOPIC_FOR_TYPE

VERSION = "sha256:" + "ab" * 32

OPENED: dict[str, Any] = {
    "id": "call_2026_equity",
    "program": "GT-EQUITY",
    "year": 2026,
    "title": "2026年度基因治疗企业股权融资资助",
    "opens_at": "2026-12-01T00:00:00+08:00",
    "closes_at": "2027-01-31T17:00:00+08:00",
    "event_window": {"from": "2026-01-01", "to": "2026-12-31"},
    "catalog_version": VERSION,
    "budget": "50000000.00",
    "opened_by": {"id": "stf_1", "name": "张三"},
    "opened_at": "2026-11-30T09:00:00+00:00",
}


def test_call_opened_round_trips_byte_for_byte() -> None:
    data = parse_data(new_event("call.opened", source="eligibility", subject="x", data=OPENED), CallOpened)
    assert data.event_window.from_ == "2026-01-01"
    assert new_typed_event(data, source="eligibility", subject="GT-EQUITY").data == OPENED


def test_a_call_without_budget_leaves_the_key_out() -> None:
    opened = {k: v for k, v in OPENED.items() if k != "budget"}
    data = CallOpened.model_validate(opened)
    assert "budget" not in new_typed_event(data, source="eligibility", subject="GT-EQUITY").data


@pytest.mark.parametrize(
    ("field", "value"),
    [("year", "2026"), ("budget", "5e7"), ("event_window", {"from": "2026-13-01", "to": "2026-12-31"}),
     ("opens_at", "tomorrow"), ("opened_by", {"name": "nobody"})],
)
def test_malformed_call_data_is_refused_naming_the_field(field: str, value: object) -> None:
    event = new_event("call.opened", source="eligibility", subject="x", data={**OPENED, field: value})
    with pytest.raises(ValueError, match=rf"data\.{field}"):
        parse_data(event, CallOpened)


def test_catalog_published_needs_a_content_address() -> None:
    good = {"version": VERSION, "published_at": "2026-11-30T09:00:00+00:00", "published_by": {"id": "operator"},
            "document": {"programs": []}}
    assert CatalogPublished.model_validate(good).to_data() == good
    event = new_event("catalog.published", source="eligibility", subject="x", data={**good, "version": "v2"})
    with pytest.raises(ValueError, match=r"data\.version"):
        parse_data(event, CatalogPublished)


def test_call_closed_names_who_and_why() -> None:
    closed = {"id": "call_1", "program": "GT-EQUITY", "year": 2026, "closes_at": "2026-12-15T10:00:00+00:00",
              "closed_by": {"id": "operator"}, "reason": "budget spent"}
    assert CallClosed.model_validate(closed).to_data() == closed


def test_policy_events_travel_on_the_policy_topic() -> None:
    assert {TOPIC_FOR_TYPE[t] for t in ("catalog.published", "call.opened", "call.closed")} == {POLICY}
