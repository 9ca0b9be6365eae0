"""Holds and reviews, pure: a program under review decides pending_review and holds its award on
every pool; what a reviewer's decision makes of a hold; the two phases' journal postings net to an
award of what was approved; a review re-decides the rest of its chain, leaving settled awards be."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain import (
    AWARD_APPROVED,
    AWARD_PENDING,
    Assessment,
    Award,
    ChainMember,
    OverlapKey,
    PoolKey,
    PoolState,
    apply_draws,
    decide_award,
    redecide_chain,
    release,
)
from services.ledger.journal.domain import (
    account_balances,
    approval_postings,
    award_postings,
    build_entry,
    change_postings,
    revocation_postings,
)
from services.ledger.reviews.domain import settle_review
from shared.contracts.events import AwardDecided
from shared.kernel.errors import ValidationFailed
from shared.kernel.money import format_fen
from tests.support.ledger import receipt

ENT = "91310115MA1H7G0L0C"
SUBJECT = PoolKey("GT-PRODUCT/subject", ENT, None, "productx")
YEAR = PoolKey("GT-PRODUCT/beneficiary-year", ENT, 2024, None)
OVERLAP = OverlapKey(ENT, "productx", "marketing_authorization")


def assessment(amount: str, review: str | None = "required", app: str = "app_1",
               program: str = "GT-PRODUCT") -> Assessment:
    return Assessment.from_receipt(receipt(program, ENT, "PRODUCT-X", amount, application_id=app, review=review,
                                           requested=amount))


def hold(amount_fen: int, app: str = "app_1", **over: Any) -> Award:
    return Award(app, "GT-PRODUCT", ENT, OVERLAP, amount_fen, ((YEAR, amount_fen), (SUBJECT, amount_fen)),
                 review=AWARD_PENDING, **over)


def decided(limited_by: str | None = None) -> AwardDecided:
    return AwardDecided(status="pending_review", limited_by=limited_by,
                        reasons=[] if limited_by is None else [{"code": "CAP_PARTLY_USED", "message": "m",
                                                                 "citation": "000 §五(四)"}])


def test_a_required_program_decides_pending_review_and_holds_its_award() -> None:
    a = assessment("30000000.00")
    assert (a.review, a.basis and a.basis.requested_fen) == ("required", 30_000_000_00)
    assert a.basis is not None and [r.citation for r in a.basis.rules] == ["002 §一(三)", "000 §六"]
    decision = decide_award(a, {}, None)
    assert (decision.status, decision.awarded_fen, decision.granted_fen, decision.held) == (
        "pending_review", 30_000_000_00, 0, True)
    assert decision.to_wire()["awarded"] == "0.00"
    assert decision.review_wire() == {"held": "30000000.00", "review": "required"}
    award = decision.to_award()
    assert award is not None and award.held and award.review == AWARD_PENDING


@pytest.mark.parametrize("review", [None, "auto"])
def test_a_receipt_without_review_or_auto_decides_at_once(review: str | None) -> None:
    decision = decide_award(assessment("1000.00", review), {}, None)
    assert (decision.status, decision.granted_fen, decision.held) == ("approved", 1000_00, False)
    assert decision.review_wire() == {"review": "auto"}
    award = decision.to_award()
    assert award is not None and award.review is None


def test_nothing_to_hold_is_no_hold() -> None:
    full = {SUBJECT: PoolState(SUBJECT, 30_000_000_00, 30_000_000_00)}
    decision = decide_award(assessment("1000.00"), full, None)
    assert (decision.status, decision.held, decision.to_award()) == ("rejected", False, None)
    assert decision.review_wire() == {"review": "required"}


def test_an_unknown_review_mode_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"receipt\.review"):
        assessment("1.00", "manual")


def test_settling_a_hold() -> None:
    award = hold(30_000_000_00)
    full = settle_review(award, decided(), "approve", None, "核定")
    assert (full.status, full.awarded_fen, full.released_fen, [r.code for r in full.reasons]) == (
        "approved", 30_000_000_00, 0, [])
    assert full.kept == replace(award, review=AWARD_APPROVED)
    capped = settle_review(award, decided("GT-PRODUCT/beneficiary-year"), "approve", 30_000_000_00, "核定")
    assert capped.status == "partially_approved", "a hold the pools limited is less than the entitlement"
    reduced = settle_review(award, decided(), "approve", 20_000_000_00, "专家评审")
    assert (reduced.status, reduced.awarded_fen, reduced.released_fen) == (
        "partially_approved", 20_000_000_00, 10_000_000_00)
    assert reduced.reasons[-1].code == "REVIEW_REDUCED" and "专家评审" in reduced.reasons[-1].message
    assert reduced.kept is not None and reduced.kept.draws == ((YEAR, 20_000_000_00), (SUBJECT, 20_000_000_00))
    rejected = settle_review(award, decided(), "reject", None, "材料不实")
    assert (rejected.status, rejected.awarded_fen, rejected.released_fen, rejected.kept) == (
        "rejected", 0, 30_000_000_00, None)
    assert rejected.reasons[-1].code == "REVIEW_REJECTED"


@pytest.mark.parametrize("amount_fen", [30_000_000_01, 0])
def test_an_amount_above_the_hold_or_of_nothing_is_422_naming_amount(amount_fen: int) -> None:
    with pytest.raises(ValidationFailed) as raised:
        settle_review(hold(30_000_000_00), decided(), "approve", amount_fen, "r")
    assert [e.field for e in raised.value.errors] == ["amount"]


def test_only_a_hold_is_settled() -> None:
    with pytest.raises(ValueError):
        settle_review(replace(hold(1_00), review=None), decided(), "approve", None, "r")


@given(held=st.integers(1, 10**12), approved=st.integers(0, 10**12))
def test_hold_approval_and_release_net_to_an_award_of_what_was_approved(held: int, approved: int) -> None:
    approved = min(approved, held)
    award = hold(held)
    postings = list(award_postings(award))
    if approved:
        postings += approval_postings(ENT, approved)
    if held - approved:
        postings += change_postings("app_1", ENT, [YEAR, SUBJECT], -(held - approved), held=True)
    entry = build_entry(seq=1, prev_hash="0" * 64, kind="hold", application_id="app_1", event_id="e",
                        postings=postings, recorded_for="t")
    net = {k: v for k, v in account_balances([entry]).items() if v}
    if not approved:
        assert net == {}
        return
    kept = replace(award, amount_fen=approved, draws=((YEAR, approved), (SUBJECT, approved)), review=AWARD_APPROVED)
    expected = account_balances([replace(entry, postings=award_postings(kept))])
    assert net == {k: v for k, v in expected.items() if v}
    assert "held:" + ENT not in net, "nothing stays held"
    # An approved award is revoked as an award of what was approved.
    assert sum(p.amount_fen for p in revocation_postings(award_postings(kept))) == 0


def test_release_gives_back_part_of_every_draw() -> None:
    assert release(hold(30_00), 10_00) == [(YEAR, -10_00), (SUBJECT, -10_00)]
    pools = {k: PoolState(k, 100_00, 30_00) for k in (YEAR, SUBJECT)}
    assert {k: s.committed_fen for k, s in apply_draws(pools, release(hold(30_00), 10_00)).items()} == {
        YEAR: 20_00, SUBJECT: 20_00}


def member(app: str, seq: int, amount: str, award: Award | None, program: str = "GT-PRODUCT") -> ChainMember:
    a = assessment(amount, app=app, program=program)
    data = {"status": "pending_review", "partner_id": None, "subject": "PRODUCT-X", "review": "required"}
    return ChainMember(replace(a, overlap=OVERLAP), seq, award, AwardDecided.model_validate(data), "corr")


def test_a_reduced_hold_redecides_its_chain_and_a_settled_award_stands() -> None:
    # app_1 held 1000万; app_2 (CT-PRODUCT, 1600万) a 600万 top-up held on it; app_3 settled (approved) later.
    ct = assessment("16000000.00", app="app_2", program="CT-PRODUCT")
    ct_pools = [p.key for p in ct.pools]
    base = hold(10_000_000_00)
    top = Award("app_2", "CT-PRODUCT", ENT, OVERLAP, 6_000_000_00, tuple((k, 6_000_000_00) for k in ct_pools),
                top_up_of="app_1", review=AWARD_PENDING)
    settled = Award("app_3", "CT-PRODUCT", ENT, OVERLAP, 1_00, tuple((k, 1_00) for k in ct_pools),
                    top_up_of="app_1", review=AWARD_APPROVED)
    pools = {k: PoolState(k, 10**12, 10_000_000_00) for k in (YEAR, SUBJECT)}
    pools |= {k: PoolState(k, 10**12, 6_000_000_01) for k in ct_pools}
    kept = replace(base, amount_fen=4_000_000_00, draws=((YEAR, 4_000_000_00), (SUBJECT, 4_000_000_00)),
                   review=AWARD_APPROVED)
    pools = apply_draws(pools, release(base, 6_000_000_00))
    members = [member("app_2", 2, "16000000.00", top, "CT-PRODUCT"), member("app_3", 3, "0.01", settled)]
    outcomes, after = redecide_chain(base, 1, members, pools, kept)
    (outcome,) = outcomes
    assert outcome.member.assessment.application_id == "app_2"
    assert (outcome.decision.status, format_fen(outcome.decision.awarded_fen)) == ("pending_review", "12000000.00")
    assert outcome.after is not None and outcome.after.held and outcome.after.top_up_of == "app_1"
    assert {k: after[k].committed_fen for k in ct_pools} == dict.fromkeys(ct_pools, 12_000_000_01)
