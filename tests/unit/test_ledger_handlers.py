"""The ledger's handlers over an in-memory repository (no database): the batch state's branches
(malformed, already decided, twice in one batch, one item failing, an invariant sinking the batch),
revocation's branches and the audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ledger import handlers
from services.ledger.audit.domain import CheckpointRef, PoolRow
from services.ledger.domain import (
    Assessment,
    Award,
    AwardRow,
    ChainMember,
    DecisionRow,
    DecisionUpdate,
    LedgerInvariantError,
    OverlapKey,
    PoolKey,
    PoolSpec,
    PoolState,
    RevocableAward,
    RevocationRow,
    ledger_subject_key,
    lock_order,
)
from services.ledger.handlers import decide_batch, revoke_award, verify_ledger
from services.ledger.journal.domain import GENESIS_HASH, JournalEntry, JournalHead, pool_account, row_of_entry
from shared.contracts.envelope import Event
from shared.contracts.events import AwardDecided
from shared.kernel.errors import Conflict, NotFound
from shared.kernel.money import format_fen
from tests.support.ledger import assessed, new_applicant, receipt

CAP_FEN = 10_000_000_00
POOL = "GT-EQUITY/beneficiary-year"


class FakeLedgerRepository:
    """The ledger's tables as dicts; records what was written, and how often."""

    def __init__(self) -> None:
        self.pools: dict[PoolKey, PoolState] = {}
        self.specs: dict[PoolKey, PoolSpec] = {}
        self.rows_by_subject_key: dict[tuple[str, str, int | None, str], PoolKey] = {}
        self.head_ = JournalHead(0, GENESIS_HASH)
        self.decisions: dict[str, DecisionRow] = {}
        self.awards: dict[str, AwardRow] = {}
        self.entries: list[JournalEntry] = []
        self.revocations: dict[str, RevocationRow] = {}
        self.events: list[tuple[Event, str]] = []
        self.pool_writes = 0
        self.head_writes = 0
        self.revoked_behind_our_back: RevocationRow | None = None  # a concurrent revoke, seen after the locks

    async def lock_pools(self, specs: Iterable[PoolSpec]) -> tuple[dict[PoolKey, PoolKey], dict[PoolKey, PoolState]]:
        by_key = {s.key: s for s in specs}
        found_at: dict[PoolKey, PoolKey] = {}
        for key in lock_order(by_key):
            spec = by_key[key]
            keyed = (key.pool, key.beneficiary, key.year, spec.subject_key)
            row = self.rows_by_subject_key.get(keyed) if spec.subject_key is not None else None
            if row is None:
                self.pools.setdefault(key, PoolState(key, spec.cap_fen, 0))
                self.specs.setdefault(key, spec)
                if spec.subject_key is not None:
                    self.rows_by_subject_key[keyed] = key
            elif row != key:
                found_at[key] = row
        return found_at, {k: self.pools[k] for k in lock_order(found_at.get(k, k) for k in by_key)}

    async def lock_pool_rows(self, keys: Iterable[PoolKey]) -> dict[PoolKey, PoolState]:
        if self.revoked_behind_our_back is not None:
            await self.insert_revocation(self.revoked_behind_our_back)
        return {k: self.pools[k] for k in lock_order(keys)}

    async def write_pools(self, before: dict[PoolKey, PoolState], after: dict[PoolKey, PoolState]) -> int:
        changed = [k for k in after if after[k] != before[k]]
        for k in changed:
            self.pools[k] = after[k]
        self.pool_writes += len(changed)
        return len(changed)

    async def lock_head(self) -> JournalHead:
        return self.head_

    async def head(self) -> JournalHead:
        return self.head_

    async def write_head(self, head: JournalHead) -> None:
        self.head_ = head
        self.head_writes += 1

    async def decided_among(self, application_ids: Sequence[str]) -> set[str]:
        return set(application_ids) & set(self.decisions)

    async def decision_status(self, application_id: str) -> str | None:
        row = self.decisions.get(application_id)
        return row.status if row else None

    async def live_awards(self, overlaps: Iterable[OverlapKey]) -> dict[OverlapKey, list[Award]]:
        out: dict[OverlapKey, list[Award]] = {k: [] for k in overlaps}
        for row in sorted(self.awards.values(), key=lambda r: (r.award.top_up_of is not None, r.journal_seq)):
            if not row.revoked and row.award.overlap in out:
                out[row.award.overlap].append(row.award)
        return out

    async def chain_members(self, overlap: OverlapKey) -> list[ChainMember]:
        members = []
        for seq, row in enumerate(self.decisions.values(), start=1):
            award = self.awards.get(row.application_id)
            if row.overlap != overlap or row.status == "ineligible" or (award is not None and award.revoked):
                continue
            decision = AwardDecided.model_validate(row.data)
            pools = tuple(PoolSpec(k, self.pools[k].cap_fen, self.specs[k].citation, self.specs[k].scope,
                                   self.specs[k].subject_key) for k in lock_order(row.pools))
            assessment = Assessment(row.application_id, row.program, row.year, row.beneficiary,
                                    decision.subject or "", True, row.entitlement_fen, (), pools, overlap,
                                    decision.catalog_version)
            members.append(ChainMember(assessment, seq, award.award if award else None, decision,
                                       row.correlation_id))
        return members

    async def chain_pools(self, overlap: OverlapKey) -> set[PoolKey]:
        return {p.key for m in await self.chain_members(overlap) for p in m.assessment.pools}

    async def update_awards(self, awards: Sequence[Award]) -> None:
        for award in awards:
            self.awards[award.application_id].award = award

    async def update_decisions(self, rows: Sequence[DecisionUpdate]) -> None:
        for u in rows:
            row = self.decisions[u.application_id]
            row.status, row.awarded_fen, row.decided_event_id, row.data = u.status, u.awarded_fen, \
                u.decided_event_id, u.data

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> None:
        self.decisions.update({r.application_id: r for r in rows})

    async def insert_awards(self, rows: Sequence[AwardRow]) -> None:
        self.awards.update({r.award.application_id: r for r in rows})

    async def insert_entries(self, entries: Sequence[JournalEntry]) -> None:
        self.entries += entries

    async def add_events(self, events: Sequence[tuple[Event, str]]) -> None:
        self.events += events

    async def revocation_data(self, application_id: str) -> dict[str, Any] | None:
        row = self.revocations.get(application_id)
        return row.data if row else None

    async def revocable_award(self, application_id: str) -> RevocableAward | None:
        row = self.awards.get(application_id)
        if row is None:
            return None
        decision = self.decisions[application_id]
        return RevocableAward(row, AwardDecided.model_validate(decision.data), decision.correlation_id)

    async def insert_revocation(self, row: RevocationRow) -> None:
        self.awards[row.application_id].revoked = True
        self.revocations[row.application_id] = row

    async def journal_page(self, after: int, limit: int) -> list[JournalEntry]:
        return [e for e in self.entries if e.seq > after][:limit]

    async def journal_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        return [row_of_entry(e) for e in await self.journal_page(after, limit)]

    async def pool_rows_page(self, after: str | None, limit: int) -> list[PoolRow]:
        rows = sorted(PoolRow(pool_account(k), s.cap_fen, s.committed_fen, s.cap_journaled)
                      for k, s in self.pools.items())
        return [r for r in rows if after is None or r.account > after][:limit]

    async def checkpoints(self) -> list[CheckpointRef]:
        return []

    async def entry_hashes(self, seqs: Sequence[int]) -> dict[int, str]:
        return {e.seq: e.hash for e in self.entries if e.seq in seqs}

    async def checkpoint_totals(self, checkpoint_id: int) -> dict[str, Any]:
        return {}


class DeadLetters(list[tuple[Event, str]]):
    def __call__(self, event: Event, error: BaseException | str) -> None:
        self.append((event, str(error)))


def equity(applicant: str, round_: str, entitlement_fen: int, **kw: Any) -> dict[str, Any]:
    pools = [{"pool": POOL, "scope": "beneficiary_year", "beneficiary": applicant, "year": 2024, "subject": None,
              "cap": format_fen(CAP_FEN), "citation": "002 §二"}]
    return receipt("GT-EQUITY", applicant, round_, format_fen(entitlement_fen), pools=pools, **kw)


def pool_of(applicant: str) -> PoolKey:
    return PoolKey(POOL, applicant, 2024, None)


NOW = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Deciding a batch
# ---------------------------------------------------------------------------------------------


async def test_a_batch_threads_the_pool_through_its_items_and_writes_each_row_once() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    ent = new_applicant()
    events = [assessed(equity(ent, f"R-{i}", 4_000_000_00)) for i in range(3)]
    await decide_batch(repo, events, dead)
    statuses = [repo.decisions[e.subject].status for e in events]  # type: ignore[index]
    assert statuses == ["approved", "approved", "partially_approved"]
    assert repo.pools[pool_of(ent)].committed_fen == CAP_FEN
    assert repo.pool_writes == 1  # the pool row is written once, with the batch's final total
    assert repo.head_writes == 1 and repo.head_.seq == 4 == len(repo.entries)  # the pool's cap, three awards
    assert [e.kind for e in repo.entries] == ["cap_open", "award", "award", "award"]
    assert [e.type for e, _ in repo.events] == ["award.decided"] * 3
    assert {key for _, key in repo.events} == {ent}
    assert dead == []


async def test_a_malformed_receipt_is_dead_lettered_and_the_rest_decided() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    ent = new_applicant()
    good = assessed(equity(ent, "R-A", 1_000_00))
    bad_data = equity(ent, "R-B", 1_000_00)
    del bad_data["applicant"]
    bad = assessed(bad_data)
    await decide_batch(repo, [bad, good], dead)
    assert [e.id for e, _ in dead] == [bad.id]
    assert "receipt.applicant: missing" in dead[0][1]
    assert list(repo.decisions) == [good.subject]


async def test_a_batch_of_malformed_receipts_touches_nothing() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    data = equity(new_applicant(), "R-A", 1_000_00)
    data["eligible"] = "yes"
    await decide_batch(repo, [assessed(data)], dead)
    assert len(dead) == 1
    assert repo.pools == {} and repo.head_writes == 0 and repo.events == []


async def test_an_application_already_decided_is_skipped_without_a_dead_letter() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    first = assessed(equity(new_applicant(), "R-A", 1_000_00))
    await decide_batch(repo, [first], dead)
    redelivered = assessed(first.data)  # the same assessment under another event id
    await decide_batch(repo, [redelivered], dead)
    assert len(repo.decisions) == 1 and len(repo.events) == 1 and repo.head_.seq == 2  # the cap, the award
    assert dead == []


async def test_the_same_application_twice_in_one_batch_is_decided_once() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    first = assessed(equity(new_applicant(), "R-A", 1_000_00))
    await decide_batch(repo, [first, assessed(first.data)], dead)
    assert len(repo.decisions) == 1 and len(repo.entries) == 2 and len(repo.events) == 1  # the cap, the award


async def test_an_item_that_fails_is_dead_lettered_alone_and_leaves_no_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    ent = new_applicant()
    events = [assessed(equity(ent, f"R-{i}", 4_000_000_00)) for i in range(3)]
    failing = events[1].subject
    real = handlers.decide_award

    def decide_award(assessment: Any, *args: Any) -> Any:
        decision = real(assessment, *args)
        if assessment.application_id == failing:
            raise ValueError("refused after deciding")  # after the pure core ran: nothing may be folded in
        return decision

    monkeypatch.setattr(handlers, "decide_award", decide_award)
    await decide_batch(repo, events, dead)
    assert [e.subject for e, _ in dead] == [failing]
    assert [repo.decisions[e.subject].status for e in (events[0], events[2])] == ["approved", "approved"]  # type: ignore[index]
    assert repo.pools[pool_of(ent)].committed_fen == 8_000_000_00  # the failed item drew nothing
    assert [e.seq for e in repo.entries] == [1, 2, 3] and repo.head_.seq == 3  # the cap, two awards


async def test_a_broken_invariant_sinks_the_whole_batch() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    ent = new_applicant()
    event = assessed(equity(ent, "R-A", 1_000_00))
    overlap = OverlapKey(ent, ledger_subject_key("R-A"), "financing")
    # A live chain whose awards disagree on their overlap key: a bug, never a business outcome.
    other = OverlapKey(ent, ledger_subject_key("R-B"), "financing")
    repo.awards["x"] = AwardRow(Award("x", "GT-EQUITY", ent, overlap, 1_00, ()), 2024, "R-A", 1)
    repo.awards["y"] = AwardRow(Award("y", "GT-EQUITY", ent, other, 1_00, ()), 2024, "R-B", 2)

    async def live_awards(overlaps: Iterable[OverlapKey]) -> dict[OverlapKey, list[Award]]:
        return {overlap: [repo.awards["x"].award, repo.awards["y"].award]}

    repo.live_awards = live_awards  # type: ignore[method-assign]
    with pytest.raises(LedgerInvariantError):
        await decide_batch(repo, [event, assessed(equity(new_applicant(), "R-C", 1_000_00))], dead)
    assert repo.decisions == {} and repo.entries == [] and repo.events == [] and repo.pool_writes == 0


async def test_ineligible_only_batch_writes_decisions_but_no_journal() -> None:
    repo, dead = FakeLedgerRepository(), DeadLetters()
    event = assessed(equity(new_applicant(), "R-A", 0, eligible=False))
    await decide_batch(repo, [event], dead)
    assert repo.decisions[event.subject].status == "ineligible"  # type: ignore[index]
    assert repo.entries == [] and repo.head_writes == 0 and repo.pool_writes == 0
    assert [e.type for e, _ in repo.events] == ["award.decided"]


# ---------------------------------------------------------------------------------------------
# Revoking
# ---------------------------------------------------------------------------------------------


async def _decided(repo: FakeLedgerRepository, *receipts: dict[str, Any]) -> list[Event]:
    events = [assessed(r) for r in receipts]
    await decide_batch(repo, events, DeadLetters())
    return events


async def test_revoking_restores_the_pool_and_negates_the_award_entry() -> None:
    repo = FakeLedgerRepository()
    ent = new_applicant()
    (event,) = await _decided(repo, equity(ent, "R-A", 3_000_000_00))
    app = str(event.subject)
    result = await revoke_award(repo, app, reason="资料不实", revoked_by="operator", now=NOW)
    assert result.created
    assert result.data["amount"] == "3000000.00" and result.data["revoked_at"] == NOW.isoformat()
    assert result.data["applicant"] == {"id": ent, "name": event.data["applicant"]["name"]}
    assert repo.pools[pool_of(ent)].committed_fen == 0
    _cap, award_entry, revocation = repo.entries
    assert revocation.kind == "revocation" and revocation.prev_hash == award_entry.hash
    assert [(p.account, -p.amount_fen) for p in revocation.postings] == [
        (p.account, p.amount_fen) for p in award_entry.postings]
    assert repo.head_ == JournalHead(3, revocation.hash)
    assert repo.awards[app].revoked and repo.revocations[app].journal_seq == 3
    (revoked, key), = [(e, k) for e, k in repo.events if e.type == "award.revoked"]
    assert key == ent and revoked.correlation_id == event.correlation_id


async def test_revoking_with_a_recorded_event_id_uses_it() -> None:
    repo = FakeLedgerRepository()
    (event,) = await _decided(repo, equity(new_applicant(), "R-A", 1_000_00))
    event_id = uuid.uuid4()
    await revoke_award(repo, str(event.subject), reason="r", revoked_by="operator", now=NOW, event_id=event_id)
    assert repo.entries[-1].event_id == str(event_id) == str(repo.events[-1][0].id)


async def test_a_second_revocation_answers_the_first_and_writes_nothing() -> None:
    repo = FakeLedgerRepository()
    (event,) = await _decided(repo, equity(new_applicant(), "R-A", 1_000_00))
    first = await revoke_award(repo, str(event.subject), reason="first", revoked_by="operator", now=NOW)
    second = await revoke_award(repo, str(event.subject), reason="second", revoked_by="other", now=NOW)
    assert not second.created and second.data == first.data
    assert len(repo.entries) == 3 and len(repo.revocations) == 1


async def test_a_revocation_that_lost_the_race_answers_the_winner() -> None:
    repo = FakeLedgerRepository()
    (event,) = await _decided(repo, equity(new_applicant(), "R-A", 1_000_00))
    app = str(event.subject)
    winner = RevocationRow(app, "winner", "operator", NOW, 1_000_00, 2, uuid.uuid4(), {"reason": "winner"})
    repo.revoked_behind_our_back = winner
    result = await revoke_award(repo, app, reason="loser", revoked_by="operator", now=NOW)
    assert not result.created and result.data == {"reason": "winner"}
    assert len(repo.entries) == 2 and repo.pool_writes == 1  # only the award's own write (and its pool's cap)


async def test_revoking_an_unknown_application_is_not_found() -> None:
    with pytest.raises(NotFound):
        await revoke_award(FakeLedgerRepository(), "app_nope", reason="r", revoked_by="operator", now=NOW)


async def test_revoking_a_decision_without_an_award_is_a_conflict() -> None:
    repo = FakeLedgerRepository()
    (event,) = await _decided(repo, equity(new_applicant(), "R-A", 0, eligible=False))
    with pytest.raises(Conflict, match="ineligible"):
        await revoke_award(repo, str(event.subject), reason="r", revoked_by="operator", now=NOW)


# ---------------------------------------------------------------------------------------------
# Auditing
# ---------------------------------------------------------------------------------------------


async def test_verify_passes_on_an_intact_ledger_and_names_a_pool_that_drifted() -> None:
    repo = FakeLedgerRepository()
    ent = new_applicant()
    await _decided(repo, equity(ent, "R-A", 1_000_00), equity(ent, "R-B", 2_000_00))
    report = await verify_ledger(repo)
    assert report == {"ok": True, "entries": 3, "head": repo.head_.hash}
    key = pool_of(ent)
    repo.pools[key] = PoolState(key, CAP_FEN, 1_00, cap_journaled=True)
    report = await verify_ledger(repo)
    assert report["ok"] is False and report["problem"] == "pool committed totals differ from the journal"
    assert report["pools"] == [{"pool": POOL, "beneficiary": ent, "year": 2024, "subject": None,
                                "journal": "3000.00", "table": "1.00", "journal_cap": "10000000.00",
                                "table_cap": "10000000.00", "differs": ["committed"]}]


# ---------------------------------------------------------------------------------------------
# Revoking a chain member re-decides the rest of the chain
# ---------------------------------------------------------------------------------------------


async def _chain(repo: FakeLedgerRepository, ent: str) -> list[str]:
    # A base of 3M, a look-alike duplicate of 2M, a look-alike top-up to 5M (2M more).
    events = await _decided(repo, equity(ent, "R-A", 3_000_000_00), equity(ent, "r a", 2_000_000_00),
                            equity(ent, "R·A", 5_000_000_00))
    return [str(e.subject) for e in events]


async def test_revoking_the_base_grants_the_duplicate_and_shrinks_nothing_else() -> None:
    repo = FakeLedgerRepository()
    ent = new_applicant()
    base, dup, top = await _chain(repo, ent)
    assert [repo.decisions[a].status for a in (base, dup, top)] == ["approved", "rejected", "approved"]
    revocation_id = uuid.uuid4()
    await revoke_award(repo, base, reason="r", revoked_by="operator", now=NOW, event_id=revocation_id)
    # Without the base: the duplicate is the base (2M), the top-up tops it up (3M, +1M).
    assert [(e.type, e.subject, e.causation_id) for e, _ in repo.events[-3:]] == [
        ("award.revoked", base, None),
        ("award.decided", dup, str(revocation_id)),
        ("award.decided", top, str(revocation_id)),
    ]
    assert [e.id for e, _ in repo.events[-2:]] == [uuid.uuid5(revocation_id, f"award.decided:{a}") for a in (dup, top)]
    assert [(e.kind, e.application_id, e.event_id) for e in repo.entries[-3:]] == [
        ("revocation", base, str(revocation_id)),
        ("redecision", dup, str(uuid.uuid5(revocation_id, f"award.decided:{dup}"))),
        ("redecision", top, str(uuid.uuid5(revocation_id, f"award.decided:{top}"))),
    ]
    assert (repo.awards[dup].award.amount_fen, repo.awards[dup].award.top_up_of) == (2_000_000_00, None)
    assert (repo.awards[top].award.amount_fen, repo.awards[top].award.top_up_of) == (3_000_000_00, dup)
    assert repo.decisions[dup].status == "approved" and repo.decisions[dup].awarded_fen == 2_000_000_00
    assert repo.pools[pool_of(ent)].committed_fen == 5_000_000_00
    assert (await verify_ledger(repo))["ok"] is True


async def test_a_revocation_made_before_chains_were_re_decided_replays_without_re_deciding() -> None:
    repo = FakeLedgerRepository()
    base, dup, _ = await _chain(repo, new_applicant())
    await revoke_award(repo, base, reason="r", revoked_by="operator", now=NOW, redecide=False)
    assert [e.type for e, _ in repo.events[-1:]] == ["award.revoked"] and len(repo.entries) == 4
    assert repo.revocations[base].redecides is False and repo.decisions[dup].status == "rejected"


async def test_a_replayed_revocation_writes_the_same_journal() -> None:
    journals = []
    ent, event_id = new_applicant(), uuid.uuid4()
    receipts = [equity(ent, "R-A", 3_000_000_00), equity(ent, "r a", 2_000_000_00)]
    events = [assessed(r) for r in receipts]
    for _ in range(2):
        repo = FakeLedgerRepository()
        await decide_batch(repo, events, DeadLetters())
        await revoke_award(repo, str(events[0].subject), reason="r", revoked_by="operator", now=NOW,
                           event_id=event_id)
        journals.append([e.hash for e in repo.entries])
    assert journals[0] == journals[1] and len(journals[0]) == 4
