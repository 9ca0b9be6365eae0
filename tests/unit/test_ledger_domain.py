"""Ledger decisions against in-memory pools: the acceptance scenarios of POLICY.md."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.dashboard.domain import SHARED_POOL_NAME, PoolLine
from services.ledger.domain import (
    OVERLAP_CITATION,
    Assessment,
    Award,
    ChainMember,
    Decision,
    LedgerInvariantError,
    OverlapKey,
    PoolBalance,
    PoolKey,
    PoolState,
    Redecision,
    apply_draws,
    decide_award,
    ledger_subject_key,
    live_award_of,
    lock_order,
    pool_instance_text,
    pool_keys_of,
    pool_states_for,
    redecide_chain,
    revoke,
)
from services.ledger.journal.domain import award_postings, change_postings
from shared.contracts.events import AwardDecided
from shared.kernel.money import WAN_FEN, YI_FEN, format_fen
from shared.kernel.subjects import SubjectRefused, subject_key

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


# ---------------------------------------------------------------------------------------------
# Subject keys
# ---------------------------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_an_ascii_subjects_key_is_subject_keys_own(subject: str) -> None:
    cleaned = "".join(c for c in subject if c.isprintable())  # the ledger drops what a reader cannot see
    try:
        expected = subject_key(cleaned)
    except SubjectRefused:
        expected = subject  # folds to nothing: its own key
    assert ledger_subject_key(subject) == expected


@pytest.mark.parametrize("subject", ["ＣＡＦÉ－Ｏ１", "CAFÉ-O1 ", "café-o1", "CAFÉ-\u041e1", "CAFE\u0301-O1",
                                     "CAF\u200dÉ-O1", "CAFÉ\u200b-O1", "CAFÉ·O1", "CAFÉ—O_1"])
def test_every_look_alike_has_one_key_and_a_key_is_its_own(subject: str) -> None:
    key = ledger_subject_key("CAFÉ-O1")
    assert ledger_subject_key(subject) == key == subject_key("CAFÉ-O1")
    assert ledger_subject_key(key) == key


def test_a_subject_that_folds_to_nothing_is_its_own_key() -> None:
    assert ledger_subject_key("--") == "--" and ledger_subject_key("\u200b") == "\u200b"


def test_the_receipt_is_read_by_key_and_the_pools_keep_their_names() -> None:
    raw = receipt("app_1", "GT-CLIN", 2026, HOSPITAL, "CTR-2024-0001", 50 * WAN_FEN, [
        pool("GT-CLIN/project", "*", 50 * WAN_FEN, "000 §四(二)5", subject="CTR-2024-0001") | {"scope": "project"},
        pool("GT-CLIN/beneficiary-year", HOSPITAL, 500 * WAN_FEN, "000 §四(二)5", year=2026),
        pool("call-budget", "*", 100 * WAN_FEN, "call call_1", year=2026, subject="call_1") | {"scope": "call"},
    ], "completion")
    a = Assessment.from_receipt(raw)
    assert a.overlap == OverlapKey(HOSPITAL, subject_key("CTR-2024-0001"), "completion")
    assert a.overlap_subject == "CTR-2024-0001"
    keys = {p.key.pool: (p.key.subject, p.subject_key) for p in a.pools}
    assert keys == {"GT-CLIN/project": ("CTR-2024-0001", subject_key("CTR-2024-0001")),
                    "GT-CLIN/beneficiary-year": (None, None), "call-budget": ("call_1", None)}


def test_an_assessment_draws_on_the_rows_its_pools_were_found_at() -> None:
    a = Assessment.from_receipt(product("app_1", "GT-PRODUCT", 100, "000 §五(四)"))
    written = PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "product x")
    moved = a.with_pools_at({PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "PRODUCT-X"): written})
    assert {p.key for p in moved.pools} == {written, PoolKey("GT-PRODUCT/beneficiary-year", ENTERPRISE, 2024, None)}
    assert [p.key for p in moved.pools] == lock_order(p.key for p in moved.pools)
    assert a.with_pools_at({}) is a


@pytest.mark.parametrize("key, text", [
    (PoolKey("GT-EQUITY/beneficiary-year", ENTERPRISE, 2026, None), f"{ENTERPRISE}, 2026"),
    (PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "x"), f"{ENTERPRISE}, x"),
    (PoolKey("GT-CLIN/project", "*", None, "ctr1"), "every applicant, ctr1"),
    (PoolKey("call-budget", "*", 2026, "call_1"), "call call_1, 2026"),
])
def test_a_pool_instance_in_words(key: PoolKey, text: str) -> None:
    assert pool_instance_text(key) == text


def test_a_shared_pool_caps_every_applicant_together() -> None:
    ledger = Ledger()
    project = pool("GT-CLIN/project", "*", 50 * WAN_FEN, "000 §四(二)5", subject="ctr1") | {"scope": "project"}
    first = ledger.decide(receipt("app_1", "GT-CLIN", 2026, HOSPITAL, "ctr1", 30 * WAN_FEN, [project], "completion"))
    other = "12310000425099999X"
    second = ledger.decide(receipt("app_2", "GT-CLIN", 2026, other, "ctr1", 40 * WAN_FEN, [project], "completion"))
    assert (first.awarded_fen, second.awarded_fen, second.limited_by) == (30 * WAN_FEN, 20 * WAN_FEN,
                                                                          "GT-CLIN/project")
    assert "every applicant" in second.reasons[0].message


def test_the_chain_is_its_base_whatever_order_the_awards_come_in() -> None:
    overlap = OverlapKey(ENTERPRISE, "x", "m")
    top_up = Award("app_2", "CT-PRODUCT", ENTERPRISE, overlap, 5, (), top_up_of="app_1")
    base = Award("app_1", "GT-PRODUCT", ENTERPRISE, overlap, 10, ())
    chain = live_award_of([top_up, base])
    assert chain is not None and (chain.application_id, chain.amount_fen) == ("app_1", 15)


# ---------------------------------------------------------------------------------------------
# Re-deciding a chain after a revocation
# ---------------------------------------------------------------------------------------------


class Chain(Ledger):
    """The Ledger above, with each application's order, receipt and decision kept for re-deciding."""

    def __init__(self) -> None:
        super().__init__()
        self.members: list[tuple[int, Assessment]] = []

    def decide(self, raw: dict[str, Any]) -> Decision:
        self.members.append((len(self.members) + 1, Assessment.from_receipt(raw)))
        return super().decide(raw)

    def redecide_after(self, app: str) -> list[Redecision]:
        revoked = self.awards[app]
        self.revoke(app)
        seq = next(s for s, a in self.members if a.application_id == app)
        live = {a for apps in self.live.values() for a in apps}
        members = [ChainMember(a, s, self.awards[a.application_id] if a.application_id in live else None,
                               AwardDecided(status="approved"), "corr")
                   for s, a in self.members if a.application_id != app and a.overlap == revoked.overlap]
        states = dict(self.pools)
        for m in members:
            states.update(pool_states_for(m.assessment, states))
        outcomes, self.pools = redecide_chain(revoked, seq, members, states)
        return outcomes


def test_revoking_the_base_makes_the_next_member_the_base_and_tops_up_the_rest() -> None:
    chain = Chain()
    chain.decide(product("app_gt", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    chain.decide(product("app_ct", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    chain.decide(product("app_dup", "GT-PRODUCT", 1800 * WAN_FEN, "000 §五(四)"))
    chain.decide(product("app_hi", "CT-PRODUCT", 2800 * WAN_FEN, "001 §四(四)11"))
    outcomes = chain.redecide_after("app_gt")
    assert [(o.member.assessment.application_id, o.decision.status, o.decision.awarded_fen, o.delta_fen,
             o.changed) for o in outcomes] == [
        ("app_ct", "approved", 2500 * WAN_FEN, 2000 * WAN_FEN, True),
        ("app_dup", "rejected", 0, 0, False),
        ("app_hi", "approved", 300 * WAN_FEN, 0, True),  # the same 300万, now a top-up of app_ct
    ]
    assert outcomes[0].after is not None and outcomes[0].after.top_up_of is None
    assert outcomes[2].after is not None and outcomes[2].after.top_up_of == "app_ct"
    assert [r.code for r in outcomes[0].decision.reasons] == ["REDECIDED"]
    assert [r.code for r in outcomes[1].decision.reasons] == ["REDECIDED", "DUPLICATE"]
    assert chain.committed(PoolKey("CT-PRODUCT/subject", ENTERPRISE, None, "PRODUCT-X")) == 2800 * WAN_FEN
    assert chain.committed(PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "PRODUCT-X")) == 0


def test_members_decided_before_the_revoked_one_keep_what_they_hold() -> None:
    chain = Chain()
    chain.decide(product("app_1", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    chain.decide(product("app_2", "CT-PRODUCT", 2500 * WAN_FEN, "001 §四(四)11"))
    chain.decide(product("app_3", "CT-PRODUCT", 2600 * WAN_FEN, "001 §四(四)11"))
    outcomes = chain.redecide_after("app_2")
    assert [(o.member.assessment.application_id, o.decision.awarded_fen, o.delta_fen) for o in outcomes] == [
        ("app_3", 600 * WAN_FEN, 500 * WAN_FEN)]  # 2600万 − app_1's 2000万
    assert chain.committed(PoolKey("GT-PRODUCT/subject", ENTERPRISE, None, "PRODUCT-X")) == 2000 * WAN_FEN


def test_a_duplicate_becomes_the_base_and_a_member_can_be_left_with_nothing() -> None:
    chain = Chain()
    chain.decide(product("app_1", "GT-PRODUCT", 2000 * WAN_FEN, "000 §五(四)"))
    chain.decide(product("app_2", "CT-PRODUCT", 1000 * WAN_FEN, "001 §四(四)11"))  # a duplicate
    chain.decide(product("app_3", "CT-PRODUCT", 2200 * WAN_FEN, "001 §四(四)11"))  # a 200万 top-up
    key = PoolKey("CT-PRODUCT/beneficiary-year", ENTERPRISE, 2024, None)
    chain.pools[key] = PoolState(key, YI_FEN, YI_FEN - 600 * WAN_FEN)  # others took the year's room
    outcomes = chain.redecide_after("app_1")
    (second, third) = outcomes
    assert (second.decision.status, second.decision.awarded_fen, second.decision.limited_by) == (
        "partially_approved", 800 * WAN_FEN, "CT-PRODUCT/beneficiary-year")
    assert second.before is None and second.after is not None and second.after.top_up_of is None
    assert (third.decision.status, third.after, third.delta_fen) == ("rejected", None, -200 * WAN_FEN)
    assert [r.code for r in third.decision.reasons] == ["REDECIDED", "TOP_UP", "CAP_EXHAUSTED"]
    assert chain.pools[key].committed_fen == YI_FEN


def test_change_postings_move_the_difference_and_balance() -> None:
    keys = [PoolKey("B", ENTERPRISE, 2024, None), PoolKey("A", ENTERPRISE, None, "x")]
    grow = change_postings("app_1", ENTERPRISE, keys, 5)
    shrink = change_postings("app_1", ENTERPRISE, keys, -5)
    assert sum(p.amount_fen for p in grow) == 0 and [p.amount_fen for p in shrink] == [-p.amount_fen for p in grow]
    assert grow[0].account == "pool:A:91310115MA1H7G0L0C::x"
    award = Award("app_1", "P", ENTERPRISE, OverlapKey(ENTERPRISE, "x", "m"), 5, tuple((k, 5) for k in keys))
    assert award_postings(award) == grow


def test_the_dashboard_names_a_shared_pools_beneficiary_every_applicant() -> None:
    shared = PoolBalance(PoolKey("call-budget", "*", 2026, "call_1"), 100, 40)
    own = PoolBalance(PoolKey("GT-EQUITY/beneficiary-year", ENTERPRISE, 2026, None), 100, 40)
    names = {ENTERPRISE: "上海某某", "*": "not a name"}
    assert PoolLine.of(shared, names).name == SHARED_POOL_NAME
    assert PoolLine.of(own, names).name == "上海某某"
