"""Ledger decisions against in-memory pools: the acceptance scenarios of POLICY.md."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from services.ledger.domain import (
    OVERLAP_CITATION,
    Assessment,
    Award,
    Decision,
    LedgerInvariantError,
    OverlapKey,
    PoolKey,
    PoolState,
    apply_draws,
    decide_award,
    live_award_of,
    lock_order,
    pool_keys_of,
    pool_states_for,
    revoke,
)
from shared.kernel.money import WAN_FEN, YI_FEN, format_fen

ENTERPRISE = "91310115MA1H7G0L0C"
HOSPITAL = "12310000425012345X"


def pool(name: str, beneficiary: str, cap_fen: int, citation: str, *, year: int | None = None,
         subject: str | None = None) -> dict[str, Any]:
    return {"pool": name, "scope": "subject" if subject is not None else "beneficiary_year",
            "beneficiary": beneficiary, "year": year, "subject": subject, "cap": format_fen(cap_fen),
            "citation": citation}


def receipt(app: str, program: str, year: int, applicant: str, subject: str, entitlement_fen: int,
            pools: Sequence[dict[str, Any]], milestone: str, *, eligible: bool = True,
            reasons: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {
        "application_id": app, "program": program, "year": year,
        "applicant": {"id": applicant, "name": "上海某某", "kind": "enterprise", "registered_in_shanghai": True},
        "subject": subject, "eligible": eligible, "entitlement": format_fen(entitlement_fen),
        "reasons": list(reasons), "rules": [], "pools": list(pools),
        "overlap": {"applicant": applicant, "subject": subject, "milestone": milestone},
        "catalog_version": "sha256:test", "engine_version": "1", "inputs": {},
    }


class Ledger:
    """The smallest in-memory service around the pure functions: pools, live awards per overlap key."""

    def __init__(self) -> None:
        self.pools: dict[PoolKey, PoolState] = {}
        self.awards: dict[str, Award] = {}
        self.live: dict[OverlapKey, list[str]] = {}

    def decide(self, raw: dict[str, Any]) -> Decision:
        assessment = Assessment.from_receipt(raw)
        states = pool_states_for(assessment, self.pools)
        chain = [self.awards[a] for a in self.live.get(assessment.overlap, [])] if assessment.overlap else []
        decision = decide_award(assessment, states, live_award_of(chain))
        self.pools.update(apply_draws(states, decision.draws))
        award = decision.to_award()
        if award is not None:
            self.awards[award.application_id] = award
            self.live.setdefault(award.overlap, []).append(award.application_id)
        return decision

    def revoke(self, app: str) -> None:
        award = self.awards[app]
        self.pools.update(apply_draws(self.pools, revoke(award)))
        self.live[award.overlap].remove(app)

    def committed(self, key: PoolKey) -> int:
        return self.pools[key].committed_fen


def equity(app: str, subject: str, year: int = 2024) -> dict[str, Any]:
    # 2% of 3亿 = 600万; per enterprise 1000万 per year (000 §五(六)).
    return receipt(app, "GT-EQUITY", year, ENTERPRISE, subject, 600 * WAN_FEN,
                   [pool("GT-EQUITY/beneficiary-year", ENTERPRISE, 1000 * WAN_FEN, "000 §五(六)", year=year)],
                   "financing")


def test_three_equity_rounds_then_next_year() -> None:
    ledger = Ledger()
    first = ledger.decide(equity("app_1", "ROUND-2024-A"))
    second = ledger.decide(equity("app_2", "ROUND-2024-B"))
    third = ledger.decide(equity("app_3", "ROUND-2024-C"))
    assert (first.status, first.awarded_fen, first.limited_by) == ("approved", 600 * WAN_FEN, None)
    assert (second.status, second.awarded_fen) == ("partially_approved", 400 * WAN_FEN)
    assert second.limited_by == "GT-EQUITY/beneficiary-year"
    assert [r.code for r in second.reasons] == ["CAP_PARTLY_USED"]
    assert second.reasons[0].citation == "000 §五(六)"
    assert (third.status, third.awarded_fen, third.limited_by) == ("rejected", 0,
                                                                   "GT-EQUITY/beneficiary-year")
    assert [r.code for r in third.reasons] == ["CAP_EXHAUSTED"]
    assert third.draws == ()
    next_year = ledger.decide(equity("app_4", "ROUND-2025-A", year=2025))
    assert (next_year.status, next_year.awarded_fen) == ("approved", 600 * WAN_FEN)
    assert ledger.committed(PoolKey("GT-EQUITY/beneficiary-year", ENTERPRISE, 2024, None)) == 1000 * WAN_FEN


def test_wire_form() -> None:
    ledger = Ledger()
    ledger.decide(equity("app_1", "ROUND-2024-A"))
    wire = ledger.decide(equity("app_2", "ROUND-2024-B")).to_wire()
    assert wire == {
        "status": "partially_approved", "entitlement": "6000000.00", "awarded": "4000000.00",
        "limited_by": "GT-EQUITY/beneficiary-year", "reasons": wire["reasons"], "top_up_of": None,
        "draws": [{"pool": "GT-EQUITY/beneficiary-year", "beneficiary": ENTERPRISE, "year": 2024,
                   "subject": None, "amount": "4000000.00"}],
    }
    assert wire["reasons"][0]["code"] == "CAP_PARTLY_USED"


def clin(app: str, project: str) -> dict[str, Any]:
    # 5万 × 10 subjects; 50万 per project, 500万 per institution per year (000 §四(二)5).
    return receipt(app, "GT-CLIN", 2024, HOSPITAL, project, 50 * WAN_FEN, [
        pool("GT-CLIN/subject", HOSPITAL, 50 * WAN_FEN, "000 §四(二)5", subject=project),
        pool("GT-CLIN/beneficiary-year", HOSPITAL, 500 * WAN_FEN, "000 §四(二)5", year=2024),
    ], "completion")


def test_eleven_clinical_projects_stop_at_the_institution_cap() -> None:
    ledger = Ledger()
    decisions = [ledger.decide(clin(f"app_{i}", f"P-{i}")) for i in range(1, 12)]
    assert [d.status for d in decisions] == ["approved"] * 10 + ["rejected"]
    assert sum(d.awarded_fen for d in decisions) == 500 * WAN_FEN
    assert decisions[-1].limited_by == "GT-CLIN/beneficiary-year"
    assert decisions[-1].reasons[0].code == "CAP_EXHAUSTED"
    assert all(len(d.draws) == 2 for d in decisions[:10])


def test_a_subject_pool_limits_a_second_application_on_the_same_project() -> None:
    ledger = Ledger()
    ledger.decide(clin("app_1", "P-1"))
    again = receipt("app_2", "GT-CLIN", 2024, HOSPITAL, "P-1", 50 * WAN_FEN, clin("x", "P-1")["pools"], "m2")
    decision = ledger.decide(again)
    assert (decision.status, decision.limited_by) == ("rejected", "GT-CLIN/subject")


def product(app: str, program: str, entitlement_fen: int, seed: str) -> dict[str, Any]:
    return receipt(app, program, 2024, ENTERPRISE, "PRODUCT-X", entitlement_fen, [
        pool(f"{program}/subject", ENTERPRISE, 3000 * WAN_FEN, seed, subject="PRODUCT-X"),
        pool(f"{program}/beneficiary-year", ENTERPRISE, YI_FEN, seed, year=2024),
    ], "marketing_authorization")


def test_overlap_top_up_then_duplicate() -> None:
    ledger = Ledger()
    gt = ledger.decide(product("app_gt", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    assert gt.status == "approved"
    ct = ledger.decide(product("app_ct", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    assert (ct.status, ct.awarded_fen, ct.top_up_of) == ("approved", 500 * WAN_FEN, "app_gt")
    assert ct.reasons[0].code == "TOP_UP" and ct.reasons[0].citation == OVERLAP_CITATION
    assert {k.pool for k, _ in ct.draws} == {"CT-PRODUCT/subject", "CT-PRODUCT/beneficiary-year"}
    assert ledger.committed(PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "PRODUCT-X")) == 2000 * WAN_FEN
    lower = ledger.decide(product("app_3", "GT-PRODUCT", 1800 * WAN_FEN, "000 §五(四)"))
    assert (lower.status, lower.awarded_fen, lower.duplicate_of) == ("rejected", 0, "app_gt")
    assert [r.code for r in lower.reasons] == ["DUPLICATE"]
    assert lower.reasons[0].citation == OVERLAP_CITATION
    equal = ledger.decide(product("app_4", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    assert [r.code for r in equal.reasons] == ["DUPLICATE"]
    higher = ledger.decide(product("app_5", "CT-PRODUCT", 3000 * WAN_FEN, "001 §四(四)11"))
    assert (higher.awarded_fen, higher.top_up_of) == (500 * WAN_FEN, "app_gt")


def test_top_up_is_clipped_by_the_new_programs_pools() -> None:
    ledger = Ledger()
    ledger.decide(product("app_gt", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    key = PoolKey("CT-PRODUCT/beneficiary-year", ENTERPRISE, 2024, None)
    ledger.pools[key] = PoolState(key, YI_FEN, YI_FEN - 100 * WAN_FEN)
    ct = ledger.decide(product("app_ct", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    assert (ct.status, ct.awarded_fen, ct.limited_by) == ("partially_approved", 100 * WAN_FEN,
                                                          "CT-PRODUCT/beneficiary-year")
    assert [r.code for r in ct.reasons] == ["TOP_UP", "CAP_PARTLY_USED"]
    assert ct.reasons[1].citation == "001 §四(四)11"


def test_revocation_restores_the_pools() -> None:
    ledger = Ledger()
    ledger.decide(equity("app_1", "ROUND-2024-A"))
    ledger.decide(equity("app_2", "ROUND-2024-B"))
    assert ledger.decide(equity("app_3", "ROUND-2024-C")).status == "rejected"
    assert revoke(ledger.awards["app_1"]) == [
        (PoolKey("GT-EQUITY/beneficiary-year", ENTERPRISE, 2024, None), -600 * WAN_FEN)]
    ledger.revoke("app_1")
    assert ledger.committed(PoolKey("GT-EQUITY/beneficiary-year", ENTERPRISE, 2024, None)) == 400 * WAN_FEN
    again = ledger.decide(equity("app_4", "ROUND-2024-D"))
    assert (again.status, again.awarded_fen) == ("approved", 600 * WAN_FEN)


def test_revoking_the_base_of_a_chain_leaves_the_top_up_live() -> None:
    ledger = Ledger()
    ledger.decide(product("app_gt", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    ledger.decide(product("app_ct", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    ledger.revoke("app_gt")
    later = ledger.decide(product("app_3", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    # Live chain is now app_ct with 500万: 2000万 − 500万 is due.
    assert (later.awarded_fen, later.top_up_of) == (1500 * WAN_FEN, "app_ct")


def test_ineligible_carries_the_receipt_reasons() -> None:
    reasons = [{"code": "RULE_FAILED", "message": "financing below 5000万", "citation": "000 §五(六)"}]
    raw = equity("app_1", "ROUND-2024-A") | {"eligible": False, "entitlement": "0.00", "reasons": reasons}
    decision = Ledger().decide(raw)
    assert (decision.status, decision.awarded_fen, decision.draws) == ("ineligible", 0, ())
    assert decision.to_wire()["reasons"] == reasons


def test_zero_entitlement_is_rejected_without_draws() -> None:
    decision = Ledger().decide(equity("app_1", "R") | {"entitlement": "0.00"})
    assert (decision.status, decision.draws, decision.reasons[0].code) == ("rejected", (), "ZERO_ENTITLEMENT")


def test_pool_keys_are_in_lock_order() -> None:
    raw = clin("app_1", "P-1")
    raw["pools"].reverse()
    keys = [k for k, _, _ in pool_keys_of(raw)]
    assert keys == lock_order(keys)
    assert [k.pool for k in keys] == ["GT-CLIN/beneficiary-year", "GT-CLIN/subject"]
    assert pool_keys_of(raw)[0][1:] == (500 * WAN_FEN, "000 §四(二)5")


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.pop("application_id"), "application_id"),
    (lambda r: r.update(entitlement=6000000.0), "entitlement"),
    (lambda r: r.update(entitlement="-1.00"), "entitlement"),
    (lambda r: r.update(eligible="yes"), "eligible"),
    (lambda r: r.update(year="2024"), "year"),
    (lambda r: r["pools"][0].update(cap="1.001"), "pools[0].cap"),
    (lambda r: r["pools"][0].update(pool="A:B"), "pools[0]"),
    (lambda r: r["pools"].append(copy.deepcopy(r["pools"][0])), "pools"),
    (lambda r: r.pop("overlap"), "overlap"),
    (lambda r: r["overlap"].pop("milestone"), "overlap.milestone"),
    (lambda r: r.update(reasons=[{"message": "x"}]), "reasons[0].code"),
])
def test_malformed_receipts_are_refused_with_the_field(mutate: Any, field: str) -> None:
    raw = equity("app_1", "ROUND-2024-A")
    mutate(raw)
    with pytest.raises(ValueError, match=f"receipt.{field}".replace("[", r"\[").replace("]", r"\]")):
        Assessment.from_receipt(raw)


def test_invariants_refuse_overdraw_and_negative() -> None:
    key = PoolKey("X/beneficiary-year", ENTERPRISE, 2024, None)
    state = PoolState(key, 100, 90)
    with pytest.raises(LedgerInvariantError):
        state.apply(11)
    with pytest.raises(LedgerInvariantError):
        state.apply(-91)
    with pytest.raises(LedgerInvariantError):
        PoolState(key, 100, 101)
    assert state.apply(10).room_fen == 0
