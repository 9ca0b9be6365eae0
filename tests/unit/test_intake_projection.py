"""The partner's view of an application, projected from downstream events in any order."""

from __future__ import annotations

import inspect
import itertools
import typing
from typing import Any

import pytest

from services.intake import api
from services.intake.domain import (
    DOWNSTREAM,
    STATUS_RANK,
    ApplicationState,
    Downstream,
    for_timeline,
    project,
    request_fingerprint,
)
from shared.contracts.envelope import new_event
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
    assert state.announcement == {"id": None, "published_at": "t1", "notice_ends_at": "t2", "objections_open": 0,
                                  "finalized_at": "t3"}


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


# -- review (核定) and objections (异议) --------------------------------------------------------

PENDING: tuple[str, dict[str, Any]] = (
    "award.decided",
    {
        "status": "pending_review",
        "entitlement": "30000000.00",
        "awarded": "0.00",
        "held": "30000000.00",
        "review": "required",
        "limited_by": None,
        "reasons": [{"code": "CAP_PARTLY_USED", "message": "m", "citation": "000 §五(六)"}],
    },
)
REVIEWER = {"id": "stf_1", "name": "张三"}
REDUCED = {"code": "REVIEW_REDUCED", "message": "专家评审核定", "citation": None}


def reviewed(decision: str = "approve", status: str = "partially_approved", awarded: str = "20000000.00",
             **over: Any) -> tuple[str, dict[str, Any]]:
    data = {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-PRODUCT", "year": 2024,
        "applicant": {"id": "91310115MA1H7G0L0C", "name": "上海某某"}, "subject": "P-1",
        "decision": decision, "status": status, "held": "30000000.00", "awarded": awarded,
        "released": "10000000.00", "limited_by": None,
        "reasons": [PENDING[1]["reasons"][0], REDUCED] if status == "partially_approved" else [],
        "reviewed_by": REVIEWER, "reason": "专家评审核定", "reviewed_at": "2024-06-03T10:00:00+08:00",
        "draws": [],
    }
    return ("award.reviewed", {**data, **over})


PUBLISHED_ANN = ("announcement.published", {"announcement_id": "ann_1", "published_at": "2024-06-03T10:00:01+08:00",
                                            "notice_ends_at": "2024-06-10T17:00:00+08:00"})


def objection(kind: str, objection_id: str, outcome: str = "dismissed") -> tuple[str, dict[str, Any]]:
    common = {"objection_id": objection_id, "announcement_id": "ann_1", "application_id": "app_1"}
    if kind == "filed":
        return ("objection.filed", {**common, "name": "李四", "organisation": "某某协会", "contact": "13800000000",
                                    "statement": "此项目不实", "filed_at": "2024-06-04T09:00:00+08:00"})
    return ("objection.resolved", {**common, "partner_id": "ptn_1", "outcome": outcome, "reason": "经核查不成立",
                                   "resolved_by": REVIEWER, "resolved_at": "2024-06-05T09:00:00+08:00"})


def test_a_required_program_waits_in_pending_review_with_what_is_held() -> None:
    state = run([ASSESSED_OK, PENDING])
    assert state.status == "pending_review"
    assert state.decision == {
        "entitlement": "30000000.00", "held": "30000000.00", "awarded": "0.00", "limited_by": None,
        "reasons": PENDING[1]["reasons"], "review": None,
    }


def test_an_auto_decision_holds_what_it_awarded_and_has_no_review() -> None:
    state = run([ASSESSED_OK, DECIDED])
    assert state.decision is not None
    assert (state.decision["held"], state.decision["awarded"], state.decision["review"]) == (
        "1600000.00", "1600000.00", None)


def test_a_reduced_approval_shows_the_review_block_and_keeps_the_award_reasons() -> None:
    state = run([ASSESSED_OK, PENDING, reviewed()])
    assert state.status == "partially_approved"
    assert state.decision == {
        "entitlement": "30000000.00", "held": "30000000.00", "awarded": "20000000.00", "limited_by": None,
        "reasons": [PENDING[1]["reasons"][0], REDUCED],
        "review": {"decision": "approve", "amount": "20000000.00", "by": REVIEWER, "reason": "专家评审核定",
                   "at": "2024-06-03T10:00:00+08:00"},
    }


def test_a_rejection_awards_nothing_and_names_the_bootstrap_operator_as_it_came() -> None:
    rejected = {"code": "REVIEW_REJECTED", "message": "m", "citation": ""}
    state = run([ASSESSED_OK, PENDING, reviewed("reject", "rejected", "0.00", reviewed_by={"id": "operator"},
                                                reasons=[PENDING[1]["reasons"][0], rejected])])
    assert state.status == "rejected"
    assert state.decision is not None and state.decision["awarded"] == "0.00"
    assert state.decision["review"]["by"] == {"id": "operator"}
    assert state.decision["review"]["amount"] == "0.00"
    assert [r["code"] for r in state.decision["reasons"]] == ["CAP_PARTLY_USED", "REVIEW_REJECTED"]


@pytest.mark.parametrize("order", list(itertools.permutations([ASSESSED_OK, PENDING, reviewed()])))
def test_a_late_pending_decision_never_undoes_its_review(order: Any) -> None:
    state = run(order)
    assert state.status == "partially_approved"
    assert state.decision is not None and state.decision["awarded"] == "20000000.00"
    assert state.decision["review"]["decision"] == "approve"


def test_a_revoked_pending_award_stays_revoked_whatever_comes_late() -> None:
    state = run([PENDING, REVOKED, reviewed(), PENDING])
    assert state.status == "revoked"
    assert state.decision is not None and state.decision["awarded"] == "0.00"


def test_the_status_ranks_order_the_life_of_an_application() -> None:
    rank = STATUS_RANK
    assert rank["received"] < rank["ineligible"] < rank["pending_review"] < rank["approved"] < rank["revoked"]
    assert rank["approved"] == rank["partially_approved"] == rank["rejected"]


def test_the_list_filter_admits_every_status() -> None:
    annotation = inspect.signature(api.list_applications, eval_str=True).parameters["status"].annotation
    (literal, none) = typing.get_args(annotation)
    assert none is type(None) and set(typing.get_args(literal)) == set(STATUS_RANK)


def test_the_announcement_counts_open_objections_and_names_its_id() -> None:
    state = run([ASSESSED_OK, DECIDED, PUBLISHED_ANN, objection("filed", "obj_1"), objection("filed", "obj_2")])
    assert state.announcement == {"id": "ann_1", "published_at": "2024-06-03T10:00:01+08:00",
                                  "notice_ends_at": "2024-06-10T17:00:00+08:00", "objections_open": 2,
                                  "finalized_at": None}
    state = project(state, typed(*objection("resolved", "obj_1")), "t")
    assert state.announcement is not None and state.announcement["objections_open"] == 1
    assert state.status == "approved", "an objection alone changes no status (an upheld one revokes in the ledger)"


OBJECTION_FLOW = [PUBLISHED_ANN, objection("filed", "obj_1"), objection("resolved", "obj_1", "upheld"),
                  objection("filed", "obj_2")]


@pytest.mark.parametrize("order", list(itertools.permutations(OBJECTION_FLOW)))
def test_the_open_count_holds_in_any_arrival_order(order: Any) -> None:
    state = run([DECIDED, *order])
    assert state.announcement is not None and state.announcement["objections_open"] == 1
    assert state.announcement["id"] == "ann_1"
    assert state.objections == {"obj_1": "upheld", "obj_2": "open"}


def test_an_objection_seen_twice_counts_once() -> None:
    filed = objection("filed", "obj_1")
    state = run([DECIDED, PUBLISHED_ANN, filed, filed])
    assert state.announcement is not None and state.announcement["objections_open"] == 1


def test_an_announcement_without_an_id_takes_the_one_objections_name() -> None:
    published = ("announcement.published", {k: v for k, v in PUBLISHED_ANN[1].items() if k != "announcement_id"})
    state = run([DECIDED, published])
    assert state.announcement is not None and state.announcement["id"] is None
    state = project(state, typed(*objection("filed", "obj_1")), "t")
    assert state.announcement is not None and state.announcement["id"] == "ann_1"


def test_the_projection_keeps_nothing_of_the_objector() -> None:
    state = run([DECIDED, PUBLISHED_ANN, objection("filed", "obj_1")])
    kept = repr(state)
    for personal in ("李四", "某某协会", "13800000000", "此项目不实"):
        assert personal not in kept


def test_the_timeline_keeps_an_objection_without_who_or_what() -> None:
    event_type, data = objection("filed", "obj_1")
    filed = new_event(event_type, source="grantline.notify", subject="app_1", data=data)
    kept = for_timeline(filed)
    assert kept.data == {"objection_id": "obj_1", "announcement_id": "ann_1", "application_id": "app_1",
                         "filed_at": "2024-06-04T09:00:00+08:00"}
    assert (kept.id, kept.type, kept.time, kept.subject) == (filed.id, filed.type, filed.time, filed.subject)
    resolved = new_event("objection.resolved", source="grantline.notify", subject="app_1",
                         data=objection("resolved", "obj_1")[1])
    assert for_timeline(resolved) is resolved


def test_a_review_without_reasons_keeps_the_decisions() -> None:
    state = run([PENDING, reviewed("approve", "approved", "30000000.00", reasons=[])])
    assert state.decision is not None and state.decision["reasons"] == PENDING[1]["reasons"]


def test_an_upheld_objection_revokes_with_its_reason_code() -> None:
    upheld = ("award.revoked", {"reason": "异议成立", "reason_code": "OBJECTION_UPHELD", "revoked_by": "stf_1"})
    state = run([DECIDED, PUBLISHED_ANN, objection("filed", "obj_1"), objection("resolved", "obj_1", "upheld"),
                 upheld])
    assert state.status == "revoked"
    assert state.decision is not None and state.decision["reasons"][-1] == {
        "code": "OBJECTION_UPHELD", "message": "异议成立", "citation": None}
    assert state.announcement is not None and state.announcement["objections_open"] == 0
    by_operator = run([DECIDED, REVOKED]).decision
    assert by_operator is not None and by_operator["reasons"][-1]["code"] == "REVOKED"
