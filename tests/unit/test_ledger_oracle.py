"""Stateful property test: random assessments, redeliveries and revocations (each re-deciding the
rest of its overlap chain) against a naive oracle.

The model of the service is the pure ledger code plus an in-memory inbox (event ids handled), the
way the real consumer uses them; the oracle recomputes every award from first principles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from services.ledger.domain import (
    Assessment,
    Award,
    ChainMember,
    Decision,
    OverlapKey,
    PoolKey,
    PoolState,
    apply_draws,
    decide_award,
    live_award_of,
    pool_states_for,
    redecide_chain,
    revoke,
)
from services.ledger.journal.domain import (
    JournalEntry,
    Posting,
    award_postings,
    award_totals_from_journal,
    change_postings,
    next_entry,
    pool_totals_from_journal,
    revocation_postings,
    verify_chain,
)
from shared.contracts.events import AwardDecided
from shared.kernel.money import format_fen

BENEFICIARIES = ("91310115MA1H7G0L0C", "12310000425012345X")
SUBJECTS = ("S1", "S2", "S3")
MILESTONES = ("m1", "m2")
YEARS = (2024, 2025)
# program → its pools: (pool name, scope)
PROGRAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "P1": (("P1/beneficiary-year", "beneficiary_year"),),
    "P2": (("P2/beneficiary-year", "beneficiary_year"), ("P2/subject", "subject")),
    "P3": (("P3/subject", "subject"),),
}
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Service:
    """The ledger service's state, driven through the pure functions only."""

    pools: dict[PoolKey, PoolState] = field(default_factory=dict)
    awards: dict[str, Award] = field(default_factory=dict)
    live: dict[OverlapKey, list[str]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    inbox: set[str] = field(default_factory=set)
    journal: list[JournalEntry] = field(default_factory=list)
    members: dict[OverlapKey, list[tuple[int, Assessment]]] = field(default_factory=dict)  # in decision order
    revoked: set[str] = field(default_factory=set)

    def snapshot(self) -> tuple[Any, ...]:
        return (dict(self.pools), dict(self.awards), {k: list(v) for k, v in self.live.items()},
                dict(self.decisions), len(self.journal))

    def _journal(self, kind: str, app: str, event_id: str, time: str, postings: tuple[Posting, ...]) -> None:
        head = self.journal[-1] if self.journal else None
        self.journal.append(next_entry(head, kind=kind, application_id=app, event_id=event_id,
                                       postings=postings, recorded_for=time))

    def handle_assessed(self, event_id: str, time: str, receipt: dict[str, Any]) -> Decision | None:
        if event_id in self.inbox:
            return None
        self.inbox.add(event_id)
        assessment = Assessment.from_receipt(receipt)
        if assessment.application_id in self.decisions:  # one decision per application
            return None
        states = pool_states_for(assessment, self.pools)
        chain = [self.awards[a] for a in self.live.get(assessment.overlap, [])] if assessment.overlap else []
        decision = decide_award(assessment, states, live_award_of(chain))
        self.decisions[assessment.application_id] = decision
        if assessment.eligible and assessment.overlap is not None:
            self.members.setdefault(assessment.overlap, []).append((len(self.decisions), assessment))
        award = decision.to_award()
        if award is None:
            return decision
        self.pools.update(apply_draws(states, decision.draws))
        self.awards[award.application_id] = award
        self.live.setdefault(award.overlap, []).append(award.application_id)
        postings = award_postings(award)
        self._journal("top_up" if award.top_up_of else "award", award.application_id, event_id, time, postings)
        return decision

    def handle_revoke(self, event_id: str, time: str, app: str) -> None:
        if event_id in self.inbox:
            return
        self.inbox.add(event_id)
        award = self.awards.get(app)
        if award is None or app not in self.live.get(award.overlap, []):
            return  # nothing awarded, or already revoked: a no-op
        self.pools.update(apply_draws(self.pools, revoke(award)))
        self.live[award.overlap].remove(app)
        self.revoked.add(app)
        self._journal("revocation", app, event_id, time, revocation_postings(award_postings(award)))
        # The rest of the chain, decided again (POLICY.md, "Support years and caps").
        members = [
            ChainMember(a, seq, self.awards[a.application_id] if a.application_id in self.live[award.overlap]
                        else None, AwardDecided(status="approved"), "corr")
            for seq, a in self.members.get(award.overlap, []) if a.application_id not in self.revoked
        ]
        states = dict(self.pools)
        for m in members:
            states.update(pool_states_for(m.assessment, states))
        seq = next(s for s, a in self.members[award.overlap] if a.application_id == app)
        outcomes, self.pools = redecide_chain(award, seq, members, states)
        for o in outcomes:
            member = o.member.assessment.application_id
            self.decisions[member] = o.decision
            if not o.changed:
                continue
            if o.after is None:
                self.live[award.overlap].remove(member)
                self.revoked.add(member)
            else:
                if o.before is None:
                    self.live[award.overlap].append(member)
                self.awards[member] = o.after
            if o.delta_fen:
                self._journal("redecision", member, event_id, time, change_postings(
                    member, o.member.assessment.applicant_id, [p.key for p in o.member.assessment.pools],
                    o.delta_fen))


@dataclass
class Oracle:
    """Naive recomputation: tuples and ints, no shared code with the ledger's decision."""

    caps: dict[str, int]
    used: dict[tuple[Any, ...], int] = field(default_factory=dict)
    live: dict[tuple[str, str, str], list[tuple[str, int]]] = field(default_factory=dict)
    granted: dict[str, tuple[int, list[tuple[Any, ...]], tuple[str, str, str]]] = field(default_factory=dict)
    seen_apps: set[str] = field(default_factory=set)
    # every eligible application of an overlap key, in order: (app, entitlement, pools)
    filed: dict[tuple[str, str, str], list[tuple[str, int, list[tuple[Any, ...]]]]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)

    def assess(self, app: str, eligible: bool, entitlement: int, pools: list[tuple[Any, ...]],
               overlap: tuple[str, str, str]) -> int | None:
        if app in self.seen_apps:
            return None
        self.seen_apps.add(app)
        if not eligible:
            return 0
        self.filed.setdefault(overlap, []).append((app, entitlement, pools))
        return self._grant(app, entitlement, pools, overlap)

    def _grant(self, app: str, entitlement: int, pools: list[tuple[Any, ...]], overlap: tuple[str, str, str]) -> int:
        held = sum(amount for _, amount in self.live.get(overlap, []))
        if self.live.get(overlap) and entitlement <= held:
            return 0
        due = entitlement - held
        amount = min([due] + [self.caps[p[0]] - self.used.get(p, 0) for p in pools])
        if amount > 0:
            for p in pools:
                self.used[p] = self.used.get(p, 0) + amount
            self.live.setdefault(overlap, []).append((app, amount))
            self.granted[app] = (amount, pools, overlap)
        return amount

    def _take_back(self, app: str) -> None:
        amount, pools, overlap = self.granted.pop(app)
        for p in pools:
            self.used[p] -= amount
        self.live[overlap] = [(a, x) for a, x in self.live[overlap] if a != app]

    def revoke(self, app: str) -> None:
        """Give the award back, then decide every later application of its chain again, in order,
        as if it had never been filed; one that had an award and now gets nothing is revoked too."""
        if app not in self.granted:
            return
        overlap = self.granted[app][2]
        self._take_back(app)
        self.revoked.add(app)
        apps = [a for a, _, _ in self.filed[overlap]]
        later = [f for f in self.filed[overlap][apps.index(app) + 1:] if f[0] not in self.revoked]
        had = {a for a, _, _ in later if a in self.granted}
        for a in had:
            self._take_back(a)
        for a, entitlement, pools in later:
            if self._grant(a, entitlement, pools, overlap) == 0 and a in had:
                self.revoked.add(a)


class LedgerMachine(RuleBasedStateMachine):
    deliveries = Bundle("deliveries")

    def __init__(self) -> None:
        super().__init__()
        self.service = Service()
        self.oracle = Oracle({})
        self.counter = 0
        self.entitlements: dict[str, int] = {}

    @initialize(caps=st.fixed_dictionaries({name: st.integers(0, 1000)
                                            for pools in PROGRAMS.values() for name, _ in pools}))
    def set_caps(self, caps: dict[str, int]) -> None:
        self.oracle = Oracle(caps)

    def _next(self) -> tuple[str, str]:
        self.counter += 1
        return str(uuid.UUID(int=self.counter)), (T0 + timedelta(seconds=self.counter)).isoformat()

    @rule(target=deliveries, program=st.sampled_from(sorted(PROGRAMS)), beneficiary=st.sampled_from(BENEFICIARIES),
          year=st.sampled_from(YEARS), subject=st.sampled_from(SUBJECTS), milestone=st.sampled_from(MILESTONES),
          eligible=st.sampled_from([True, True, True, False]), entitlement=st.integers(0, 600))
    def assess(self, program: str, beneficiary: str, year: int, subject: str, milestone: str, eligible: bool,
               entitlement: int) -> tuple[str, str, dict[str, Any]]:
        event_id, time = self._next()
        app = f"app_{self.counter}"
        pools = []
        oracle_pools: list[tuple[Any, ...]] = []
        for name, scope in PROGRAMS[program]:
            y, s = (year, None) if scope == "beneficiary_year" else (None, subject)
            pools.append({"pool": name, "scope": scope, "beneficiary": beneficiary, "year": y, "subject": s,
                          "cap": format_fen(self.oracle.caps[name]), "citation": f"cite {name}"})
            oracle_pools.append((name, beneficiary, y, s))
        raw = {"application_id": app, "program": program, "year": year,
               "applicant": {"id": beneficiary, "name": "x", "kind": "enterprise", "registered_in_shanghai": True},
               "subject": subject, "eligible": eligible, "entitlement": format_fen(entitlement),
               "reasons": [] if eligible else [{"code": "RULE_FAILED", "message": "no", "citation": "c"}],
               "rules": [], "pools": pools,
               "overlap": {"applicant": beneficiary, "subject": subject, "milestone": milestone}}
        decision = self.service.handle_assessed(event_id, time, raw)
        expected = self.oracle.assess(app, eligible, entitlement, oracle_pools, (beneficiary, subject, milestone))
        assert decision is not None and expected is not None
        assert decision.awarded_fen == expected, (decision, expected)
        assert decision.awarded_fen <= decision.entitlement_fen
        assert decision.status == self._expected_status(decision, eligible)
        event("+".join([decision.status, *(r.code for r in decision.reasons)]))
        self.entitlements[app] = entitlement
        return event_id, time, raw

    @staticmethod
    def _expected_status(decision: Decision, eligible: bool) -> str:
        if not eligible:
            return "ineligible"
        if decision.awarded_fen == 0:
            return "rejected"
        return "approved" if decision.awarded_fen == decision.due_fen else "partially_approved"

    @rule(delivery=deliveries)
    def redeliver(self, delivery: tuple[str, str, dict[str, Any]]) -> None:
        before = self.service.snapshot()
        assert self.service.handle_assessed(*delivery) is None
        assert self.service.snapshot() == before

    @rule(delivery=deliveries)
    def reassess_under_a_new_event_id(self, delivery: tuple[str, str, dict[str, Any]]) -> None:
        before = self.service.snapshot()
        event_id, time = self._next()
        assert self.service.handle_assessed(event_id, time, delivery[2]) is None
        assert self.service.snapshot() == before

    @rule(delivery=deliveries, redeliver=st.booleans())
    def revoke(self, delivery: tuple[str, str, dict[str, Any]], redeliver: bool) -> None:
        app = delivery[2]["application_id"]
        event_id, time = self._next()
        self.service.handle_revoke(event_id, time, app)
        self.oracle.revoke(app)
        if redeliver:
            before = self.service.snapshot()
            self.service.handle_revoke(event_id, time, app)
            assert self.service.snapshot() == before

    # -- invariants ------------------------------------------------------------------------------

    def _live_awards(self) -> list[Award]:
        return [self.service.awards[a] for apps in self.service.live.values() for a in apps]

    @invariant()
    def pools_within_caps_and_equal_to_live_draws(self) -> None:
        from_draws: dict[PoolKey, int] = {}
        for award in self._live_awards():
            for key, amount in award.draws:
                from_draws[key] = from_draws.get(key, 0) + amount
        for key, state in self.service.pools.items():
            assert 0 <= state.committed_fen <= state.cap_fen
            assert state.committed_fen == from_draws.get(key, 0)
            oracle_key = (key.pool, key.beneficiary, key.year, key.subject)
            assert state.committed_fen == self.oracle.used.get(oracle_key, 0)

    @invariant()
    def one_live_chain_per_overlap_key(self) -> None:
        for overlap, apps in self.service.live.items():
            if not apps:
                continue
            live_sum = sum(self.service.awards[a].amount_fen for a in apps)
            assert live_sum <= max(self.entitlements[a] for a in apps)  # 不重复: never paid twice
            for app in apps:
                award = self.service.awards[app]
                assert award.overlap == overlap
                if award.top_up_of is not None:
                    assert self.service.awards[award.top_up_of].overlap == overlap

    @invariant()
    def journal_verifies_and_re_sums(self) -> None:
        result = verify_chain(self.service.journal)
        assert result.ok, result
        committed = {k: s.committed_fen for k, s in self.service.pools.items() if s.committed_fen}
        assert pool_totals_from_journal(self.service.journal) == committed
        assert award_totals_from_journal(self.service.journal) == {
            a.application_id: a.amount_fen for a in self._live_awards()}

    @invariant()
    def awards_never_exceed_entitlements(self) -> None:
        for decision in self.service.decisions.values():
            assert 0 <= decision.awarded_fen <= decision.due_fen
            assert decision.awarded_fen <= decision.entitlement_fen


LedgerMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerOracle = LedgerMachine.TestCase
