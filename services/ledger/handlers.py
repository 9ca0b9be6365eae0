"""What the ledger does: decide a partition's batch of assessments, and revoke an award.

Deciding a batch (one transaction, opened by the consumer loop):
1. parse every receipt; a malformed one is dead-lettered and the rest go on;
2. lock every pool the batch touches ONCE (created first if missing), in lock order, then the
   journal head (repository docs);
3. read which applications are already decided and the live award chains of the batch's
   overlap keys;
4. decide each assessment in order, in memory, with the pure core. Each item works on a
   copy-on-write view of the batch state and is folded in only when it succeeds: that is the
   per-item savepoint (nothing of an item touches the database before step 5, so there is
   nothing to roll back there); a ValueError dead-letters the item alone, a
   LedgerInvariantError (a bug) sinks the whole batch;
5. write decisions, awards, journal entries and award.decided events in bulk, each changed pool
   row once, and the head.

A decision depends only on the event and the state left by earlier events: journal entries
are recorded for the assessment event's time, never the wall clock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import repository as repo
from services.ledger.domain import (
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
    pool_states_for,
    revoke,
)
from services.ledger.journal.domain import (
    JournalEntry,
    award_postings,
    build_entry,
    pool_totals_from_journal,
    revocation_postings,
    verify_chain,
)
from shared.contracts.envelope import Event, new_event
from shared.kernel.errors import Conflict, NotFound
from shared.kernel.money import format_fen
from shared.messaging.consumer import DeadLetter
from shared.messaging.outbox import add_events

log = logging.getLogger(__name__)

SOURCE = "grantline.ledger"


# ---------------------------------------------------------------------------------------------
# Deciding
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    event: Event
    assessment: Assessment
    partner_id: str | None
    applicant_name: str | None
    recorded_for: str = ""  # the event's time, RFC 3339 (parse_item sets it once)
    event_id: str = ""  # str(event.id) (parse_item sets it once)

    def __post_init__(self) -> None:
        if not self.recorded_for:
            object.__setattr__(self, "recorded_for", self.event.time.isoformat())
        if not self.event_id:
            object.__setattr__(self, "event_id", str(self.event.id))


def parse_item(event: Event) -> Item:
    """ValueError when the receipt cannot be decided on."""
    data = event.data
    assessment = Assessment.from_receipt(data)
    if event.subject and event.subject != assessment.application_id:
        raise ValueError(f"event subject {event.subject!r} differs from receipt.application_id")
    partner_id = data.get("partner_id")
    name = data["applicant"].get("name")
    if partner_id is not None and not isinstance(partner_id, str):
        raise ValueError("receipt.partner_id: must be a string")
    if name is not None and not isinstance(name, str):
        raise ValueError("receipt.applicant.name: must be a string")
    return Item(event, assessment, partner_id, name, event.time.isoformat(), str(event.id))


def decided_data(item: Item, decision: Decision) -> dict[str, Any]:
    """The award.decided data, as published (and stored in decisions.data)."""
    a = item.assessment
    wire = decision.to_wire()
    return {
        "application_id": a.application_id,
        "partner_id": item.partner_id,
        "program": a.program,
        "year": a.year,
        "applicant": {"id": a.applicant_id, "name": item.applicant_name},
        "subject": a.subject,
        "status": wire["status"],
        "entitlement": wire["entitlement"],
        "awarded": wire["awarded"],
        "limited_by": wire["limited_by"],
        "reasons": wire["reasons"],
        "top_up_of": wire["top_up_of"],
        "draws": wire["draws"],
        "catalog_version": a.catalog_version,
    }


@dataclass
class BatchState:
    """The batch's view of the ledger, in memory between the locks and the bulk write."""

    pools: dict[PoolKey, PoolState]
    head: repo.Head
    live: dict[OverlapKey, list[Award]]
    decided: set[str]
    decisions: list[repo.DecisionRow] = field(default_factory=list)
    awards: list[repo.AwardRow] = field(default_factory=list)
    entries: list[JournalEntry] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)

    def decide(self, item: Item) -> Decision:
        """Decide one item; the state changes only if everything about the item succeeded."""
        a, event = item.assessment, item.event
        states = pool_states_for(a, self.pools)
        chain = self.live.get(a.overlap) if a.overlap is not None else None
        decision = decide_award(a, states, live_award_of(chain) if chain else None)
        new_states = apply_draws(states, decision.draws)
        award = decision.to_award()
        entry: JournalEntry | None = None
        if award is not None:
            entry = build_entry(
                seq=self.head.seq + 1, prev_hash=self.head.hash,
                kind="top_up" if award.top_up_of else "award",
                application_id=a.application_id, event_id=item.event_id,
                postings=award_postings(award), recorded_for=item.recorded_for,
            )
        data = decided_data(item, decision)
        decided = new_event("award.decided", source=SOURCE, subject=a.application_id, data=data,
                            causation=event, time=event.time)
        # Fold in (nothing below can fail on the item's data).
        self.pools.update(new_states)
        if award is not None and entry is not None:
            self.head = repo.Head(entry.seq, entry.hash)
            self.entries.append(entry)
            self.awards.append(repo.AwardRow(award, a.year, a.subject, entry.seq))
            self.live.setdefault(award.overlap, []).append(award)
        self.decided.add(a.application_id)
        self.decisions.append(repo.DecisionRow(
            application_id=a.application_id, assessed_event_id=event.id, decided_event_id=decided.id,
            program=a.program, beneficiary=a.applicant_id, year=a.year, status=decision.status,
            entitlement_fen=a.entitlement_fen, awarded_fen=decision.awarded_fen,
            correlation_id=decided.correlation_id, recorded_for=item.recorded_for, data=data,
        ))
        self.events.append((decided, a.applicant_id))
        return decision

    async def flush(self, session: AsyncSession, before: dict[PoolKey, PoolState]) -> None:
        await repo.write_pools(session, before, self.pools)
        await repo.insert_decisions(session, self.decisions)
        await repo.insert_entries(session, self.entries)
        await repo.insert_awards(session, self.awards)
        if self.entries:
            await repo.write_head(session, self.head)
        await add_events(session, self.events)


async def decide_awards(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """The ledger's BatchHandler for `application.assessed` (shared.messaging.consumer protocol)."""
    items: list[Item] = []
    for event in events:
        try:
            items.append(parse_item(event))
        except ValueError as exc:
            log.warning("malformed assessment receipt", extra={"event_id": str(event.id)})
            dead_letter(event, exc)
    if not items:
        return
    locked = await repo.lock_pools(session, [spec for item in items for spec in item.assessment.pools])
    head = await repo.lock_head(session)
    decided = await repo.decided_among(session, [i.assessment.application_id for i in items])
    live = await repo.live_awards(session, [i.assessment.overlap for i in items if i.assessment.overlap])
    state = BatchState(pools=dict(locked), head=head, live=live, decided=decided)
    for item in items:
        if item.assessment.application_id in state.decided:
            # The same assessment under another event id: one decision per application.
            log.debug("application already decided", extra={"event_id": str(item.event.id)})
            continue
        try:
            state.decide(item)
        except LedgerInvariantError:
            raise
        except ValueError as exc:
            dead_letter(item.event, exc)
    await state.flush(session, locked)


# ---------------------------------------------------------------------------------------------
# Revoking (operator)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    data: dict[str, Any]
    created: bool


async def revoke_award(
    session: AsyncSession,
    application_id: str,
    *,
    reason: str,
    revoked_by: str,
    now: datetime,
    event_id: uuid.UUID | None = None,
) -> Revocation:
    """Give one application's award back (a compensating entry), in the caller's transaction.

    Only this application's own award: its top-ups, if any, are other applications' awards and
    stay live until revoked themselves (domain.revoke). A second call returns the first revocation.

    `now` is the revocation's time (the wall clock for an operator; the recorded time on replay) and
    `event_id` the award.revoked id (new for an operator; the recorded one on replay), so a replayed
    revocation hashes to the same journal entry.
    """
    existing = await _revocation(session, application_id)
    if existing is not None:
        return Revocation(existing, False)
    row = (
        await session.execute(
            text("SELECT a.*, d.data AS decision, d.correlation_id AS decision_correlation FROM awards a JOIN decisions d USING (application_id) "
                 "WHERE a.application_id = :a"),
            {"a": application_id},
        )
    ).one_or_none()
    if row is None:
        decided = await session.scalar(text("SELECT status FROM decisions WHERE application_id = :a"),
                                       {"a": application_id})
        if decided is None:
            raise NotFound(f"no decision for application {application_id}")
        raise Conflict(f"application {application_id} was {decided}: nothing was awarded, nothing to revoke")
    award = repo.award_from_row(row)
    before = await repo.lock_pool_rows(session, [k for k, _ in award.draws])
    head = await repo.lock_head(session)
    existing = await _revocation(session, application_id)  # a concurrent revoke got there first
    if existing is not None:
        return Revocation(existing, False)
    award_entry = await repo.entry_for(session, row.journal_seq)
    decision = row.decision
    data = {
        "application_id": application_id,
        "partner_id": decision.get("partner_id"),
        "program": award.program,
        "year": row.year,
        "applicant": decision.get("applicant") or {"id": award.beneficiary, "name": None},
        "subject": row.subject,
        "amount": format_fen(award.amount_fen),
        "reason": reason,
        "revoked_by": revoked_by,
        "revoked_at": now.isoformat(),
    }
    event = new_event("award.revoked", source=SOURCE, subject=application_id, data=data,
                      correlation_id=row.decision_correlation, time=now)
    if event_id is not None:
        event = event.model_copy(update={"id": event_id})
    entry = build_entry(
        seq=head.seq + 1, prev_hash=head.hash, kind="revocation", application_id=application_id,
        event_id=str(event.id), postings=revocation_postings(award_entry.postings),
        recorded_for=now.isoformat(),
    )
    after = apply_draws(before, revoke(award))
    await repo.write_pools(session, before, after)
    await repo.insert_entries(session, [entry])
    await repo.write_head(session, repo.Head(entry.seq, entry.hash))
    await session.execute(text("UPDATE awards SET revoked = true WHERE application_id = :a"),
                          {"a": application_id})
    await session.execute(
        text("INSERT INTO revocations (application_id, reason, revoked_by, revoked_at, amount_fen, journal_seq, "
             "event_id, data) VALUES (:a, :r, :by, :at, :amt, :j, :e, CAST(:d AS jsonb))"),
        {"a": application_id, "r": reason, "by": revoked_by, "at": now, "amt": award.amount_fen,
         "j": entry.seq, "e": event.id, "d": repo._json(data)},
    )
    await add_events(session, [(event, award.beneficiary)])
    return Revocation(data, True)


async def _revocation(session: AsyncSession, application_id: str) -> dict[str, Any] | None:
    data = await session.scalar(text("SELECT data FROM revocations WHERE application_id = :a"),
                                {"a": application_id})
    return dict(data) if data is not None else None


# ---------------------------------------------------------------------------------------------
# Auditing
# ---------------------------------------------------------------------------------------------


async def verify_ledger(session: AsyncSession) -> dict[str, Any]:
    """Re-hash the whole chain against the stored head and re-sum every pool from the journal."""
    entries = await repo.whole_journal(session)
    head = await repo.head_row(session)
    chain = verify_chain(entries, expected_head=head.hash)
    from_journal = pool_totals_from_journal(entries)
    in_table = {k: v for k, v in (await repo.pools_committed(session)).items() if v != 0}
    mismatches = [
        {"pool": k.pool, "beneficiary": k.beneficiary, "year": k.year, "subject": k.subject,
         "journal": format_fen(from_journal.get(k, 0)), "table": format_fen(in_table.get(k, 0))}
        for k in lock_order(set(from_journal) | set(in_table))
        if from_journal.get(k, 0) != in_table.get(k, 0)
    ]
    out: dict[str, Any] = {"ok": chain.ok and not mismatches, "entries": chain.entries, "head": chain.head}
    if not chain.ok:
        out["first_bad_seq"] = chain.first_bad_seq
        out["problem"] = chain.problem
    elif mismatches:
        out["problem"] = "pool committed totals differ from the journal"
    if mismatches:
        out["pools"] = mismatches
    return out
