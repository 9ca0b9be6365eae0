"""What the ledger does: decide a partition's batch of assessments, and revoke an award.

Deciding a batch (one transaction, opened by the consumer loop):
1. parse every receipt; a malformed one is dead-lettered and the rest go on;
2. lock every pool the batch touches ONCE (created first if missing), in lock order, then the
   journal head (repository docs);
3. read which applications are already decided and the live award chains of the batch's
   overlap keys (by subject key: look-alike spellings are one chain, and one pool);
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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.audit.handlers import verify_ledger as verify_ledger  # the route's, and tests'
from services.ledger.domain import (
    OBJECTION_UPHELD,
    Assessment,
    Award,
    AwardListing,
    AwardRow,
    ChainMember,
    Decision,
    DecisionRow,
    DecisionUpdate,
    LedgerInvariantError,
    ListFilter,
    OverlapKey,
    PoolBalance,
    PoolKey,
    PoolSpec,
    PoolState,
    Redecision,
    RevocableAward,
    RevocationRow,
    SubjectClash,
    apply_draws,
    as_stored,
    decide_award,
    live_award_of,
    lock_order,
    parse_receipt,
    pool_states_for,
    redecide_chain,
    release,
    revoked_data,
    with_call,
)
from services.ledger.journal.domain import (
    JournalEntry,
    JournalHead,
    award_postings,
    build_entry,
    cap_open_postings,
    change_postings,
    parse_pool_account,
    pool_account,
    revocation_postings,
)
from services.ledger.repository import SqlLedgerRepository
from shared.contracts.envelope import Event
from shared.contracts.events import AwardDecided, AwardRevoked, ObjectionResolved, new_typed_event, parse_data
from shared.kernel.cursors import next_page, page_after, parse_seq
from shared.kernel.errors import Conflict, NotFound
from shared.messaging.consumer import DeadLetter

log = logging.getLogger(__name__)

SOURCE = "grantline.ledger"
REDECIDED_BY = "ledger"  # who revokes an award that a chain's re-decision leaves at nothing


# ---------------------------------------------------------------------------------------------
# What the handlers need from the ledger's tables (SqlLedgerRepository in production; an
# in-memory fake in the unit tests)
# ---------------------------------------------------------------------------------------------


class WriteRepository(Protocol):
    """Locks and writes that deciding and revoking share."""

    async def lock_head(self) -> JournalHead: ...

    async def write_head(self, head: JournalHead) -> None: ...

    async def write_pools(self, before: dict[PoolKey, PoolState], after: dict[PoolKey, PoolState]) -> int: ...

    async def insert_entries(self, entries: Sequence[JournalEntry]) -> None: ...

    async def add_events(self, events: Sequence[tuple[Event, str]]) -> None: ...


class DecideRepository(WriteRepository, Protocol):
    async def lock_pools(self, specs: Iterable[PoolSpec]) -> tuple[dict[PoolKey, PoolKey], dict[PoolKey, PoolState]]: ...

    async def decided_among(self, application_ids: Sequence[str]) -> set[str]: ...

    async def live_awards(self, overlaps: Iterable[OverlapKey]) -> dict[OverlapKey, list[Award]]: ...

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> None: ...

    async def insert_awards(self, rows: Sequence[AwardRow]) -> None: ...


class RevokeRepository(WriteRepository, Protocol):
    async def revocation_data(self, application_id: str) -> dict[str, Any] | None: ...

    async def revocable_award(self, application_id: str) -> RevocableAward | None: ...

    async def decision_status(self, application_id: str) -> str | None: ...

    async def lock_pool_rows(self, keys: Iterable[PoolKey]) -> dict[PoolKey, PoolState]: ...

    async def insert_revocation(self, row: RevocationRow) -> None: ...

    async def chain_pools(self, overlap: OverlapKey) -> set[PoolKey]: ...

    async def chain_members(self, overlap: OverlapKey) -> list[ChainMember]: ...

    async def insert_awards(self, rows: Sequence[AwardRow]) -> None: ...

    async def update_awards(self, awards: Sequence[Award]) -> None: ...

    async def update_decisions(self, rows: Sequence[DecisionUpdate]) -> None: ...


class ListRepository(Protocol):
    async def pool_balances(self, filters: ListFilter = ..., *, after: PoolKey | None = None,
                            limit: int | None = None) -> list[PoolBalance]: ...

    async def awards_page(self, filters: ListFilter, *, after: int | None = None,
                          limit: int | None = None) -> list[AwardListing]: ...


class ClashRepository(Protocol):
    async def subject_clashes(self, *, after: int | None = None, limit: int) -> list[SubjectClash]: ...


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
    receipt = parse_receipt(event.data)
    assessment = Assessment.from_receipt(receipt)
    if event.subject and event.subject != assessment.application_id:
        raise ValueError(f"event subject {event.subject!r} differs from receipt.application_id")
    name = receipt.applicant.name if receipt.applicant is not None else None
    return Item(event, assessment, receipt.partner_id, name, event.time.isoformat(), str(event.id))


def decided_data(item: Item, decision: Decision) -> dict[str, Any]:
    """The award.decided data as decisions.data keeps it; published with the receipt's call
    (domain.with_call)."""
    return decision_data(item.assessment, item.partner_id, item.applicant_name, decision)


def decision_data(a: Assessment, partner_id: str | None, applicant_name: str | None,
                  decision: Decision) -> dict[str, Any]:
    wire = decision.to_wire()
    return {
        "application_id": a.application_id,
        "partner_id": partner_id,
        "program": a.program,
        "year": a.year,
        "applicant": {"id": a.applicant_id, "name": applicant_name},
        "subject": a.subject,
        "status": wire["status"],
        "entitlement": wire["entitlement"],
        "awarded": wire["awarded"],
        "limited_by": wire["limited_by"],
        "reasons": wire["reasons"],
        "top_up_of": wire["top_up_of"],
        "draws": wire["draws"],
        "catalog_version": a.catalog_version,
        **decision.review_wire(),
    }


@dataclass
class BatchState:
    """The batch's view of the ledger, in memory between the locks and the bulk write."""

    pools: dict[PoolKey, PoolState]
    head: JournalHead
    live: dict[OverlapKey, list[Award]]
    decided: set[str]
    decisions: list[DecisionRow] = field(default_factory=list)
    awards: list[AwardRow] = field(default_factory=list)
    entries: list[JournalEntry] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)

    def decide(self, item: Item) -> Decision:
        """Decide one item; the state changes only if everything about the item succeeded."""
        a, event = item.assessment, item.event
        states = pool_states_for(a, self.pools)
        # The caps of pools first used here go into the journal before anything the item draws
        # (per item, not per batch, so that a replay batched otherwise writes the same chain). An
        # ineligible application uses no pool: rows only it named stay unused, their caps unjournaled.
        head = self.head
        caps: list[JournalEntry] = []
        for key in lock_order(states) if a.eligible else ():
            if not states[key].cap_journaled:
                opened = build_entry(
                    seq=head.seq + 1, prev_hash=head.hash, kind="cap_open", application_id=pool_account(key),
                    event_id=item.event_id, postings=cap_open_postings(key, states[key].cap_fen),
                    recorded_for=item.recorded_for,
                )
                caps.append(opened)
                head = JournalHead(opened.seq, opened.hash)
                states[key] = replace(states[key], cap_journaled=True)
        chain = self.live.get(a.overlap) if a.overlap is not None else None
        decision = decide_award(a, states, live_award_of(chain) if chain else None)
        new_states = apply_draws(states, decision.draws)
        award = decision.to_award()
        entry: JournalEntry | None = None
        if award is not None:
            entry = build_entry(
                seq=head.seq + 1, prev_hash=head.hash,
                kind="hold" if award.held else "top_up" if award.top_up_of else "award",
                application_id=a.application_id, event_id=item.event_id,
                postings=award_postings(award), recorded_for=item.recorded_for,
            )
        decided = new_typed_event(AwardDecided.model_validate(with_call(decided_data(item, decision), a.call_id)),
                                  source=SOURCE, subject=a.application_id, causation=event, time=event.time)
        # Fold in (nothing below can fail on the item's data).
        self.pools.update(new_states)
        if caps:
            self.entries += caps
            self.head = head
        if award is not None and entry is not None:
            self.head = JournalHead(entry.seq, entry.hash)
            self.entries.append(entry)
            self.awards.append(AwardRow(award, a.year, a.subject, entry.seq, overlap_subject=a.overlap_subject))
            self.live.setdefault(award.overlap, []).append(award)
        self.decided.add(a.application_id)
        self.decisions.append(DecisionRow(
            application_id=a.application_id, assessed_event_id=event.id, decided_event_id=decided.id,
            program=a.program, beneficiary=a.applicant_id, year=a.year, status=decision.status,
            entitlement_fen=a.entitlement_fen, awarded_fen=decision.granted_fen,
            correlation_id=decided.correlation_id, recorded_for=item.recorded_for, data=as_stored(decided.data),
            overlap=a.overlap if a.eligible else None, pools=tuple(p.key for p in a.pools) if a.eligible else (),
            basis=a.basis, call_id=a.call_id,
        ))
        self.events.append((decided, a.applicant_id))
        return decision

    async def flush(self, repo: DecideRepository, before: dict[PoolKey, PoolState]) -> None:
        await repo.write_pools(before, self.pools)
        await repo.insert_decisions(self.decisions)
        await repo.insert_entries(self.entries)
        await repo.insert_awards(self.awards)
        if self.entries:
            await repo.write_head(self.head)
        await repo.add_events(self.events)


async def decide_awards(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """The ledger's BatchHandler for `application.assessed` (shared.messaging.consumer protocol)."""
    await decide_batch(SqlLedgerRepository(session), events, dead_letter)


async def decide_batch(repo: DecideRepository, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """Decide a batch of assessments in the repository's transaction (see the module docs)."""
    items: list[Item] = []
    for event in events:
        try:
            items.append(parse_item(event))
        except ValueError as exc:
            log.warning("malformed assessment receipt", extra={"event_id": str(event.id)})
            dead_letter(event, exc)
    if not items:
        return
    found_at, locked = await repo.lock_pools([spec for item in items for spec in item.assessment.pools])
    if found_at:  # pools opened under another spelling of their subject: draw on those rows
        items = [replace(i, assessment=i.assessment.with_pools_at(found_at)) for i in items]
    head = await repo.lock_head()
    decided = await repo.decided_among([i.assessment.application_id for i in items])
    live = await repo.live_awards([i.assessment.overlap for i in items if i.assessment.overlap])
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
    await state.flush(repo, locked)


# ---------------------------------------------------------------------------------------------
# Revoking (an operator, an upheld objection) and giving back what an award no longer holds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    data: dict[str, Any]
    created: bool


async def revoke_award(
    repo: RevokeRepository,
    application_id: str,
    *,
    reason: str,
    revoked_by: str,
    now: datetime,
    event_id: uuid.UUID | None = None,
    redecide: bool = True,
    reason_code: str | None = None,
) -> Revocation:
    """Give one application's award back (a compensating entry), then re-decide the rest of its
    overlap chain (POLICY.md, "Support years and caps"), all in the repository's transaction.

    Every application of the chain decided after it gets what it would have had if the revoked one
    had never been filed (domain.redecide_chain): each difference is a `redecision` journal entry
    and an `award.decided` event, or, for one left with nothing, an `award.revoked` by the ledger.
    Those events are caused by the revocation's and have ids derived from its id, so a replay (which
    repeats the revocation, not its consequences) writes the same journal. `redecide` is False only
    to replay a revocation made before revocations re-decided chains. A second call returns the
    first revocation. An award still held for review is revoked alike: its hold is released.

    `now` is the revocation's time (the wall clock for an operator; the recorded time on replay) and
    `event_id` the award.revoked id (new for an operator; the recorded one on replay), so a replayed
    revocation hashes to the same journal entries. `reason_code` says why when it is not an
    operator's act (OBJECTION_UPHELD), on the event.
    """
    existing = await repo.revocation_data(application_id)
    if existing is not None:
        return Revocation(existing, False)
    found = await repo.revocable_award(application_id)
    if found is None:
        decided = await repo.decision_status(application_id)
        if decided is None:
            raise NotFound(f"no decision for application {application_id}")
        raise Conflict(f"application {application_id} was {decided}: nothing was awarded, nothing to revoke")
    chained = redecide and found.row.in_chain
    before, head = await lock_award(repo, found.row.award, chained=chained)
    existing = await repo.revocation_data(application_id)  # a concurrent revoke got there first
    if existing is not None:
        return Revocation(existing, False)
    # Under the head lock no one else writes: read again what a concurrent re-decision may have
    # moved, or a reviewer rejected meanwhile.
    found = await repo.revocable_award(application_id)
    if found is None:
        raise Conflict(f"application {application_id} was rejected in review meanwhile: nothing to revoke")
    award = found.row.award
    members = await chain_under_lock(repo, award, before, chained=chained)
    revoked = revoked_data(found, reason=reason, revoked_by=revoked_by, revoked_at=now)
    if reason_code is not None:
        revoked["reason_code"] = reason_code
    event = new_typed_event(
        AwardRevoked.model_validate(revoked),
        source=SOURCE, subject=application_id, correlation_id=found.correlation_id, time=now, event_id=event_id,
    )
    writes = ChainWrites(JournalHead(head.seq, head.hash), now)
    entry = writes.entry("revocation", application_id, str(event.id), revocation_postings(award_postings(award)))
    writes.revocations.append(RevocationRow(
        application_id=application_id, reason=reason, revoked_by=revoked_by, revoked_at=now,
        amount_fen=award.amount_fen, journal_seq=entry.seq, event_id=event.id, data=event.data, redecides=redecide,
    ))
    writes.events.append((event, award.beneficiary))
    pools = writes.give_back(award, before, members, cause=event)
    await writes.flush(repo, before, pools)
    return Revocation(event.data, True)


async def revoke_on_upheld_objection(session: AsyncSession, event: Event) -> None:
    """The ledger's EventHandler for `objection.resolved` (through per_event): an objection upheld
    revokes the award it names through the one revocation path, by the reviewer who resolved it,
    with the reason code OBJECTION_UPHELD (CONTRACT.md, "Objections"). Idempotent: the revocation's
    id derives from the event's, and a second objection upheld finds the award revoked already. A
    dismissed objection changes nothing; one naming an award that was never granted, or is gone,
    is logged."""
    data = parse_data(event, ObjectionResolved)
    if data.outcome != "upheld":
        return
    try:
        await revoke_award(SqlLedgerRepository(session), data.application_id, reason=data.reason[:500],
                           revoked_by=data.resolved_by.id, now=datetime.fromisoformat(data.resolved_at),
                           event_id=uuid.uuid5(event.id, "award.revoked"), reason_code=OBJECTION_UPHELD)
    except (NotFound, Conflict) as exc:
        log.warning("an upheld objection revokes nothing: %s", exc.detail,
                    extra={"event_id": str(event.id), "application_id": data.application_id})


async def lock_award(repo: RevokeRepository, award: Award, *, chained: bool) -> tuple[
        dict[PoolKey, PoolState], JournalHead]:
    """Lock what changing `award` may write, in the lock order (repository docs): its pools (and,
    `chained`, the pools of its overlap chain), then the journal head."""
    pools_of_chain = await repo.chain_pools(award.overlap) if chained else set()
    before = await repo.lock_pool_rows({k for k, _ in award.draws} | pools_of_chain)
    return before, await repo.lock_head()


async def chain_under_lock(repo: RevokeRepository, award: Award, before: dict[PoolKey, PoolState], *,
                           chained: bool) -> list[ChainMember]:
    """The members of `award`'s chain, read under the head lock; the pools of a member decided
    between the first read and the locks are locked too (into `before`)."""
    members = await repo.chain_members(award.overlap) if chained else []
    missing = _pools_of(award, members) - set(before)
    if missing:
        before.update(await repo.lock_pool_rows(missing))
    return members


def _pools_of(award: Award, members: Sequence[ChainMember]) -> set[PoolKey]:
    keys = {k for k, _ in award.draws}
    for m in members:
        keys.update(p.key for p in m.assessment.pools)
        if m.award is not None:
            keys.update(k for k, _ in m.award.draws)
    return keys


@dataclass
class ChainWrites:
    """What a revocation or a review, and the re-decision of its chain, write, in order."""

    head: JournalHead
    now: datetime
    entries: list[JournalEntry] = field(default_factory=list)
    revocations: list[RevocationRow] = field(default_factory=list)
    updated: list[Award] = field(default_factory=list)
    inserted: list[AwardRow] = field(default_factory=list)
    decisions: list[DecisionUpdate] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)

    def entry(self, kind: str, application_id: str, event_id: str, postings: Sequence[Any]) -> JournalEntry:
        entry = build_entry(seq=self.head.seq + 1, prev_hash=self.head.hash, kind=kind,
                            application_id=application_id, event_id=event_id, postings=postings,
                            recorded_for=self.now.isoformat())
        self.entries.append(entry)
        self.head = JournalHead(entry.seq, entry.hash)
        return entry

    def give_back(self, award: Award, pools: dict[PoolKey, PoolState], members: Sequence[ChainMember], *,
                  cause: Event, kept: Award | None = None) -> dict[PoolKey, PoolState]:
        """The pools once `award` gave back all it held (`kept` None) or all but `kept`, and the
        rest of its chain re-decided (each change written here, caused by `cause`)."""
        released_fen = award.amount_fen - (kept.amount_fen if kept is not None else 0)
        states = apply_draws(pools, release(award, released_fen))
        seq = next((m.seq for m in members if m.assessment.application_id == award.application_id), None)
        if seq is None:
            return states
        others = [m for m in members if m.assessment.application_id != award.application_id]
        outcomes, states = redecide_chain(award, seq, others, states, kept)
        for outcome in outcomes:
            if outcome.changed:
                self.redecided(outcome, cause=cause)
        return states

    async def flush(self, repo: RevokeRepository, before: dict[PoolKey, PoolState], pools: dict[PoolKey, PoolState],
                    *, settle: Callable[[], Awaitable[None]] | None = None) -> None:
        """Write it all; `settle` writes the changed award's own rows first (a review's), before any
        other award of its chain may become the chain's base."""
        await repo.write_pools(before, pools)
        await repo.insert_entries(self.entries)
        await repo.write_head(self.head)
        for row in self.revocations:
            await repo.insert_revocation(row)
        if settle is not None:
            await settle()
        await repo.update_awards(self.updated)
        await repo.insert_awards(self.inserted)
        await repo.update_decisions(self.decisions)
        await repo.add_events(self.events)

    def redecided(self, outcome: Redecision, *, cause: Event) -> None:
        """One member's new outcome: the difference in the journal, its rows, its event."""
        member, decision, before, after = outcome.member, outcome.decision, outcome.before, outcome.after
        a = member.assessment
        app = a.application_id
        if after is None:
            assert before is not None  # changed, and nothing now: it had an award
            self._taken_back(member, before, decision, cause)
            return
        if before is not None and before.held != after.held:
            raise LedgerInvariantError(f"{app}: a re-decision keeps an award's review state")
        event = new_typed_event(
            AwardDecided.model_validate(with_call(decision_data(
                a, member.decision.partner_id, member.decision.applicant.name if member.decision.applicant else None,
                decision), a.call_id)),
            source=SOURCE, subject=app, correlation_id=member.correlation_id, causation=cause, time=self.now,
            event_id=uuid.uuid5(cause.id, f"award.decided:{app}"),
        )
        entry = None
        if outcome.delta_fen != 0:
            entry = self.entry("redecision", app, str(event.id),
                               change_postings(app, a.applicant_id, [p.key for p in a.pools], outcome.delta_fen,
                                               held=after.held))
        if before is None:
            assert entry is not None
            self.inserted.append(AwardRow(after, a.year, a.subject, entry.seq))
        else:
            self.updated.append(after)
        self.decisions.append(DecisionUpdate(app, decision.status, decision.granted_fen, event.id,
                                             as_stored(event.data)))
        self.events.append((event, a.applicant_id))

    def _taken_back(self, member: ChainMember, before: Award, decision: Decision, cause: Event) -> None:
        a = member.assessment
        app = a.application_id
        reason = "; ".join(r.message for r in decision.reasons)[:500]
        event_id = uuid.uuid5(cause.id, f"award.revoked:{app}")
        found = RevocableAward(AwardRow(before, a.year, a.subject, 0), member.decision, member.correlation_id)
        event = new_typed_event(
            AwardRevoked.model_validate(revoked_data(found, reason=reason, revoked_by=REDECIDED_BY,
                                                     revoked_at=self.now)),
            source=SOURCE, subject=app, correlation_id=member.correlation_id, causation=cause, time=self.now,
            event_id=event_id,
        )
        entry = self.entry("redecision", app, str(event_id), revocation_postings(award_postings(before)))
        self.revocations.append(RevocationRow(
            application_id=app, reason=reason, revoked_by=REDECIDED_BY, revoked_at=self.now,
            amount_fen=before.amount_fen, journal_seq=entry.seq, event_id=event_id, data=event.data,
        ))
        self.events.append((event, a.applicant_id))

# ---------------------------------------------------------------------------------------------
# Listing (cursor pages; a bad cursor is a 422)
# ---------------------------------------------------------------------------------------------

BALANCES_CURSOR = "balances:"  # the last pool's account
AWARDS_CURSOR = "awards:"  # the last award's journal seq
CLASHES_CURSOR = "clashes:"  # the last subject clash's id


def _pool_after(account: str) -> PoolKey:
    key = parse_pool_account(account)
    if key.year is not None and not 0 <= key.year < 2**31:  # an int column: keep it a 422
        raise ValueError("not a cursor returned by this API")
    return key


async def list_balances(repo: ListRepository, filters: ListFilter, *, cursor: str | None,
                        limit: int) -> tuple[list[PoolBalance], str | None]:
    """A page of pools in key order (beneficiary, pool, year, subject), and the next page's cursor."""
    after = page_after(cursor or None, BALANCES_CURSOR, _pool_after)
    rows = await repo.pool_balances(filters, after=after, limit=limit + 1)
    return next_page(rows, limit, BALANCES_CURSOR, lambda b: pool_account(b.key))


async def list_awards(repo: ListRepository, filters: ListFilter, *, cursor: str | None,
                      limit: int) -> tuple[list[AwardListing], str | None]:
    """A page of granted awards in decision order, and the next page's cursor."""
    after = page_after(cursor or None, AWARDS_CURSOR, parse_seq)
    rows = await repo.awards_page(filters, after=after, limit=limit + 1)
    return next_page(rows, limit, AWARDS_CURSOR, lambda a: a.row.journal_seq)


async def list_subject_clashes(repo: ClashRepository, *, cursor: str | None,
                               limit: int) -> tuple[list[SubjectClash], str | None]:
    """A page of the subject clashes the subject-key migration found, in the order found."""
    after = page_after(cursor or None, CLASHES_CURSOR, parse_seq)
    rows = await repo.subject_clashes(after=after, limit=limit + 1)
    return next_page(rows, limit, CLASHES_CURSOR, lambda c: c.id)
