"""The partner's view of an application, projected from downstream events in any order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from services.intake.domain import (
    DOWNSTREAM,
    ApplicationState,
    Downstream,
    project,
    request_fingerprint,
)
from shared.kernel.cursors import decode_cursor, encode_cursor

RECEIVED = ApplicationState("received", 0, None)
ASSESSED_OK = ("application.assessed", {"eligible": True, "entitlement": "1600000.00", "reasons": []})
ASSESSED_NO = (
    "application.assessed",
    {
        "eligible": False,
        "entitlement": "0.00",
        "reasons": [{"code": "BELOW_THRESHOLD", "message": "m", "citation": "c"}],
    },
)
DECIDED: tuple[str, dict[str, Any]] = (
    "award.decided",
    {
        "status": "approved",
        "entitlement": "1600000.00",
        "awarded": "1600000.00",
        "limited_by": None,
        "reasons": [],
    },
)
REVOKED = ("award.revoked", {"reason": "fraud", "amount": "1600000.00"})
PUBLISHED = ("announcement.published", {"published_at": "t1", "notice_ends_at": "t2"})
FINALIZED = ("award.finalized", {"finalized_at": "t3"})


def typed(event_type: str, data: dict[str, Any]) -> Downstream:
    model = DOWNSTREAM[event_type]
    if event_type in ("announcement.published", "award.finalized"):
        # Their times here ("t1") are placeholders the model would refuse: built unchecked.
        return model.model_construct(**data)
    return model.model_validate(data)


def run(events: Any) -> ApplicationState:
    state = RECEIVED
    for event_type, data in events:
        state = project(state, typed(event_type, data), "t")
    return state


def test_ineligible_assessment_is_final() -> None:
    state = run([ASSESSED_NO])
    assert state.status == "ineligible"
    assert state.decision is not None and state.decision["reasons"][0]["code"] == "BELOW_THRESHOLD"


def test_an_eligible_assessment_shows_the_entitlement_while_received() -> None:
    state = run([ASSESSED_OK])
    assert state.status == "received"
    assert state.decision is not None and state.decision["entitlement"] == "1600000.00"


@pytest.mark.parametrize("order", list(itertools.permutations([ASSESSED_OK, DECIDED, PUBLISHED])))
def test_any_arrival_order_ends_in_the_same_state(order: Any) -> None:
    state = run(order)
    assert state.status == "approved"
    assert state.decision is not None and state.decision["awarded"] == "1600000.00"
    assert state.announcement is not None and state.announcement["notice_ends_at"] == "t2"


def test_revocation_wins_over_a_late_decision_and_records_the_reason() -> None:
    state = run([ASSESSED_OK, REVOKED, DECIDED])
    assert state.status == "revoked"
    assert state.decision is not None
    assert any(r["code"] == "REVOKED" for r in state.decision["reasons"])


def test_finalisation_fills_the_announcement_block() -> None:
    state = run([ASSESSED_OK, DECIDED, PUBLISHED, FINALIZED])
    assert state.announcement == {"published_at": "t1", "notice_ends_at": "t2", "finalized_at": "t3"}


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})


def test_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(12345, "s"), "s") == 12345
    assert encode_cursor(7, "s") != "7"


@pytest.mark.parametrize("bad", ["!!", "eDEyMw", "c2FiYw", "%%%", "czk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"])
def test_forged_cursors_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(bad, "s")
