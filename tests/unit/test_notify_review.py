"""Notify announces only approved awards: an `auto` decision at once, a reviewed one once the
review approves it (the approved amount); a decision pending review is not announced. Every
decision and review goes to the partner as a webhook."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.notify import domain
from shared.contracts.envelope import Event, new_event

NOW = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)
ENDS = NOW + timedelta(days=13)
APPLICANT = {"id": "91310115MA1H7G0L0C", "name": "上海某某生物科技有限公司"}


def pending() -> Event:
    app_id = "app_" + uuid.uuid4().hex
    return new_event("award.decided", source="grantline.ledger", subject=app_id, data={
        "application_id": app_id, "partner_id": "ptn_1", "program": "GT-PRODUCT", "year": 2026,
        "applicant": APPLICANT, "subject": "PRODUCT-1", "status": "pending_review", "entitlement": "30000000.00",
        "awarded": "0.00", "limited_by": None, "reasons": [], "top_up_of": None, "draws": [],
        "catalog_version": "v1", "held": "30000000.00", "review": "required",
    })


def reviewed(decision: Event, *, decision_: str = "approve", awarded: str = "20000000.00",
             status: str = "partially_approved") -> Event:
    d = decision.data
    data: dict[str, Any] = {
        "application_id": d["application_id"], "partner_id": d["partner_id"], "program": d["program"],
        "year": d["year"], "applicant": d["applicant"], "subject": d["subject"], "decision": decision_,
        "status": status, "held": d["held"], "awarded": awarded,
        "released": f"{30000000 - float(awarded):.2f}", "reasons": [],
        "reviewed_by": {"id": "stf_1", "name": "李审核"}, "reason": "专家评审核定",
        "reviewed_at": NOW.isoformat(), "draws": [],
    }
    return new_event("award.reviewed", source="grantline.ledger", subject=d["application_id"], causation=decision,
                     data=data)


def test_a_decision_pending_review_is_not_announced_but_goes_to_the_partner() -> None:
    plan = domain.plan_award_event(pending(), notice_ends_at=ENDS, now=NOW)
    assert plan is not None and plan.announcement is None
    assert orjson.loads(plan.delivery.body)["type"] == "award.decided"


def test_an_approving_review_is_announced_with_the_approved_amount() -> None:
    decision = pending()
    review = reviewed(decision)
    plan = domain.plan_award_event(review, notice_ends_at=ENDS, now=NOW)
    assert plan is not None and plan.announcement is not None
    a = plan.announcement
    assert (a.amount_fen, a.decided_event_id, a.notice_ends_at) == (2_000_000_000, review.id, ENDS)
    assert a.id == domain.announcement_id_for(a.published.id) and a.id.startswith("ann_")
    assert a.published.data["amount"] == "20000000.00"
    assert a.published.data["announcement_id"] == a.id
    assert a.published.causation_id == str(review.id)
    body = orjson.loads(plan.delivery.body)
    assert (body["type"], body["id"], body["data"]) == ("award.reviewed", str(review.id), review.data)
    assert plan.delivery.partner_id == "ptn_1"


@pytest.mark.parametrize(("decision_", "awarded", "status"), [("reject", "0.00", "rejected")])
def test_a_rejecting_review_is_not_announced(decision_: str, awarded: str, status: str) -> None:
    plan = domain.plan_award_event(reviewed(pending(), decision_=decision_, awarded=awarded, status=status),
                                   notice_ends_at=ENDS, now=NOW)
    assert plan is not None and plan.announcement is None
    assert orjson.loads(plan.delivery.body)["type"] == "award.reviewed"


def test_a_malformed_review_fails_before_anything_is_written() -> None:
    review = reviewed(pending())
    broken = review.model_copy(update={"data": {**review.data, "decision": "maybe"}})
    with pytest.raises(ValueError, match=r"award\.reviewed: data\.decision"):
        domain.plan_award_event(broken, notice_ends_at=ENDS, now=NOW)
