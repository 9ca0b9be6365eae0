"""The replay's pure parts: the operations to replay, what a source yielded, the diff between two
ledger states and the report. No I/O, no clock."""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ledger.payments.domain import BankEntry, mask_account
from services.ledger.reviews.domain import ReviewDecision
from shared.contracts.envelope import Event, parse_event
from shared.contracts.events import (
    AwardReviewed,
    AwardRevoked,
    PaymentBatchApproved,
    PaymentBatchCreated,
    PaymentBatchSent,
    PaymentFailed,
    PaymentOrdered,
    PaymentReturned,
    PaymentSent,
    PaymentSettled,
    PaymentStep,
    parse_data,
)
from shared.kernel.money import parse_amount

BATCH = 10_000  # operations per transaction (decide_awards gets every run of assessments between the others)
MAX_LISTED = 20  # differences listed per table (the count is always exact)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ReplayError(RuntimeError):
    """The replay could not run (source unavailable, scratch schema in use, ...)."""


def usable_scratch_schema(schema: str, *taken: str) -> bool:
    """A plain identifier, and none of the live schemas."""
    return bool(_SCHEMA_NAME.match(schema)) and schema not in taken


# ---------------------------------------------------------------------------------------------
# The live order: the ledger's own event history
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decide:
    assessment_id: str  # the application.assessed event id the live ledger decided on


@dataclass(frozen=True)
class Revoke:
    application_id: str
    reason: str
    revoked_by: str
    revoked_at: datetime
    event_id: uuid.UUID
    redecides: bool = True  # made since revocations re-decide the rest of their chain
    reason_code: str | None = None  # OBJECTION_UPHELD for a revocation an upheld objection caused


@dataclass(frozen=True)
class Review:
    """A reviewer's decision on a hold, as recorded (its award.reviewed event)."""

    application_id: str
    verdict: ReviewDecision
    amount_fen: int | None  # what was approved (None for a rejection)
    reason: str
    reviewed_by: dict[str, str]
    reviewed_at: datetime
    event_id: uuid.UUID


@dataclass(frozen=True)
class Finalize:
    """A finalisation the live ledger ordered payment for (its `payment.ordered` whose id derives
    from the `award.finalized` event's): that event again, as order_payment reads it, with the
    order id it gave and the status it ordered with."""

    event: Event
    order_id: str
    status: str


@dataclass(frozen=True)
class KeepPayee:
    """A payee event (application.received with a payee, payee.updated) the live ledger handled."""

    event_id: str


@dataclass(frozen=True)
class CreateBatch:
    batch_id: str
    program: str | None
    year: int | None
    count: int
    control_sum_fen: int
    by: dict[str, str]
    at: datetime


@dataclass(frozen=True)
class ApproveBatch:
    batch_id: str
    by: dict[str, str]
    at: datetime


@dataclass(frozen=True)
class SendBatch:
    batch_id: str
    payer: tuple[str, str, str]  # name, account, bank code (the debtor the live pain.001 named)
    document_sha256: str
    at: datetime


@dataclass(frozen=True)
class BankStep:
    """One bank entry's step as the live ledger recorded it (its payment.settled / returned / failed)."""

    event_id: uuid.UUID
    order_id: str
    outcome: str  # settled, returned or failed
    amount_fen: int
    reason_code: str | None
    reason: str | None

    def entry(self, index: int) -> BankEntry:
        """The bank entry that does this step: a booked debit settles, a booked return returns, a
        rejection fails (what the ledger keeps of the document; the rest did not decide the step)."""
        return BankEntry(index=index, path=f"replay[{index}]", end_to_end_id=self.order_id, amount_fen=self.amount_fen,
                         currency="CNY", status="RJCT" if self.outcome == "failed" else "BOOK",
                         returned=self.outcome == "returned", debit=self.outcome == "settled",
                         reason_code=self.reason_code, reason=self.reason, reference=None)


@dataclass(frozen=True)
class BankSteps:
    """The steps of one chunk of a bank document (one transaction live, one `at`)."""

    statements: bool  # camt (settled, returned) or pain.002 (failed)
    at: str
    steps: tuple[BankStep, ...]


Op = Decide | Revoke | Review | Finalize | KeepPayee | CreateBatch | ApproveBatch | SendBatch | BankSteps


def revoke_op(event: Event, redecides: bool = True) -> Revoke:
    """A revocation the live ledger recorded (its award.revoked event) as the operation to replay."""
    data = parse_data(event, AwardRevoked)
    if data.application_id is None or data.reason is None or data.revoked_by is None or data.revoked_at is None:
        raise ValueError(f"award.revoked {event.id}: application_id, reason, revoked_by and revoked_at are needed")
    return Revoke(data.application_id, data.reason, data.revoked_by, datetime.fromisoformat(data.revoked_at),
                  event.id, redecides, data.reason_code)


def review_op(event: Event) -> Review:
    """A review the live ledger recorded (its award.reviewed event) as the operation to replay: the
    amount approved is the one recorded, whether the reviewer named it or took the whole hold."""
    data = parse_data(event, AwardReviewed)
    return Review(data.application_id, data.decision,
                  parse_amount(data.awarded) if data.decision == "approve" else None, data.reason,
                  data.reviewed_by.to_data(), datetime.fromisoformat(data.reviewed_at), event.id)


# ---------------------------------------------------------------------------------------------
# Payments in the live order: the ledger's payment.* events, and where the payee events go
# ---------------------------------------------------------------------------------------------

# The outbox types replay reads (each with its envelope, seq and created_at).
PAYMENT_TYPES = ("payment.ordered", "payment.sent", "payment.settled", "payment.failed", "payment.returned",
                 "payment.batch_created", "payment.batch_approved", "payment.batch_sent")
_BANK_OUTCOMES = {"payment.settled": "settled", "payment.returned": "returned", "payment.failed": "failed"}
_STEPS: dict[str, type[PaymentStep]] = {m.event_type: m for m in (PaymentOrdered, PaymentSent, PaymentSettled,
                                                                   PaymentFailed, PaymentReturned)}


@dataclass(frozen=True)
class HistoryRow:
    """One row of the ledger's outbox, in seq order: its type, cause, envelope (for the types
    replayed from it), whether a revocation re-decided its chain, and when its transaction began."""

    seq: int
    type: str
    causation_id: str | None
    envelope: str | None
    redecides: bool | None
    created_at: datetime


@dataclass(frozen=True)
class PayeeTrigger:
    """A `payment.ordered` (ready) that a payee event caused: where that payee event goes."""

    event_id: uuid.UUID
    application_id: str
    order_id: str


@dataclass
class PlannedOps:
    """The operations in the live order, each with when its transaction began (for placing the
    payee events), and what could not be made an operation."""

    ops: list[Op] = field(default_factory=list)
    began: list[datetime] = field(default_factory=list)
    triggers: list[tuple[int, PayeeTrigger]] = field(default_factory=list)  # (position in ops, trigger)
    problems: list[str] = field(default_factory=list)

    def add(self, op: Op, began: datetime) -> None:
        self.ops.append(op)
        self.began.append(began)


def _by(actor: Any) -> dict[str, str]:
    return {k: v for k, v in actor.to_data().items() if isinstance(v, str)}


def plan_history(rows: Iterable[HistoryRow], finalized_ids: Iterable[str]) -> PlannedOps:
    """The ledger's outbox in seq order → the operations to replay, and where each payee-caused
    `payment.ordered` is (the payee event goes there). `finalized_ids` are the award.finalized event
    ids the live ledger may have ordered payment for.

    A decision needs only its cause: the assessment's id. What a revocation or a review caused (its
    chain's re-decisions, as award.decided and award.revoked events whose cause is it) is not an
    operation: replaying the revocation or the review repeats it. A revocation an upheld objection
    caused is one: the objection is not the ledger's history, the revocation is. Likewise a batch's
    `payment.sent` events are what sending it (`payment.batch_sent`) did, and the settled, returned
    and failed events of one bank chunk (one transaction, one `at`) are applied as that chunk."""
    by_ordered = {uuid.uuid5(uuid.UUID(f), "payment.ordered"): f for f in finalized_ids}
    plan = PlannedOps()
    causes: set[str] = set()
    sent: set[str] = set()
    bank: list[BankStep] = []
    bank_key: tuple[bool, str] | None = None
    bank_began: datetime | None = None

    def flush_bank() -> None:
        nonlocal bank, bank_key
        if bank and bank_key is not None and bank_began is not None:
            plan.add(BankSteps(bank_key[0], bank_key[1], tuple(bank)), bank_began)
        bank, bank_key = [], None

    for row in rows:
        if row.type in _BANK_OUTCOMES:
            assert row.envelope is not None
            event = parse_event(row.envelope.encode())
            step = parse_data(event, _STEPS[row.type])
            key = (row.type != "payment.failed", step.at)
            if key != bank_key:
                flush_bank()
                bank_key, bank_began = key, row.created_at
            bank.append(BankStep(event.id, step.order_id, _BANK_OUTCOMES[row.type], parse_amount(step.amount),
                                 step.reason_code, step.reason))
            continue
        flush_bank()
        if row.causation_id is not None and row.causation_id in causes:
            continue
        if row.type == "award.decided":
            plan.add(Decide(str(row.causation_id)), row.created_at)
        elif row.type == "award.revoked" and row.envelope is not None:
            revocation = revoke_op(parse_event(row.envelope.encode()), bool(row.redecides))
            causes.add(str(revocation.event_id))
            plan.add(revocation, row.created_at)
        elif row.type == "award.reviewed" and row.envelope is not None:
            review = review_op(parse_event(row.envelope.encode()))
            causes.add(str(review.event_id))
            plan.add(review, row.created_at)
        elif row.type in PAYMENT_TYPES and row.envelope is not None:
            _plan_payment(plan, row, parse_event(row.envelope.encode()), by_ordered, sent)
    flush_bank()
    return plan


def _plan_payment(plan: PlannedOps, row: HistoryRow, event: Event, by_ordered: Mapping[uuid.UUID, str],
                  sent: set[str]) -> None:
    if row.type == "payment.ordered":
        step = parse_data(event, _STEPS[row.type])
        finalized_id = by_ordered.get(event.id)
        if finalized_id is None:  # made ready by a payee event: that event goes here
            plan.triggers.append((len(plan.ops), PayeeTrigger(event.id, step.application_id, step.order_id)))
            return
        data: dict[str, Any] = {"application_id": step.application_id}
        if step.partner_id is not None:
            data["partner_id"] = step.partner_id
        data["finalized_at"] = step.at
        finalized = Event(id=uuid.UUID(finalized_id), type="award.finalized", source="grantline.notify",
                          time=event.time, subject=step.application_id, correlation_id=event.correlation_id,
                          data=data)
        plan.add(Finalize(finalized, step.order_id, step.status), row.created_at)
    elif row.type == "payment.batch_created":
        created = parse_data(event, PaymentBatchCreated)
        plan.add(CreateBatch(created.batch_id, created.program, created.year, created.count,
                             parse_amount(created.control_sum), _by(created.created_by),
                             datetime.fromisoformat(created.at)), row.created_at)
    elif row.type == "payment.batch_approved":
        approved = parse_data(event, PaymentBatchApproved)
        plan.add(ApproveBatch(approved.batch_id, _by(approved.approved_by), datetime.fromisoformat(approved.at)),
                 row.created_at)
    elif row.type == "payment.batch_sent":
        batch = parse_data(event, PaymentBatchSent)
        sent.add(batch.batch_id)
        plan.add(SendBatch(batch.batch_id, (batch.payer.name, batch.payer.account, batch.payer.bank_code),
                           batch.document_sha256, datetime.fromisoformat(batch.at)), row.created_at)
    elif row.type == "payment.sent":
        step = parse_data(event, _STEPS[row.type])
        if step.batch_id not in sent:
            plan.problems.append(f"payment.sent {event.id} (batch {step.batch_id}) has no payment.batch_sent before "
                                 "it (history from before batch events): its batch cannot be replayed")
            sent.add(str(step.batch_id))


@dataclass(frozen=True)
class PayeeEvent:
    """A payee event from the source that the live ledger handled, in source order."""

    event_id: str
    application_id: str
    handled_at: datetime  # when the live transaction that handled it began (its inbox row)


def place_payees(plan: PlannedOps, payees: Sequence[PayeeEvent]) -> list[str]:
    """Put each payee event into `plan.ops` where the live ledger applied it; problems, if any.

    The payee events one live transaction handled (one inbox time) go together, in source order: at
    the `payment.ordered` the first of them caused, else before the first operation whose own
    transaction began later (a payee kept earlier is what a finalisation or a batch then saw)."""
    problems: list[str] = []
    by_app: dict[str, list[PayeeEvent]] = {}
    for p in payees:
        by_app.setdefault(p.application_id, []).append(p)
    at_trigger: dict[str, int] = {}
    for position, trigger in plan.triggers:
        cause = next((p for p in by_app.get(trigger.application_id, [])
                      if uuid.uuid5(uuid.UUID(p.event_id), f"payment.ordered:{trigger.order_id}") == trigger.event_id),
                     None)
        if cause is None:
            problems.append(f"payment.ordered {trigger.event_id} (order {trigger.order_id} made ready by a payee): "
                            "no payee event in the source caused it")
        else:
            at_trigger.setdefault(cause.event_id, position)
    groups: dict[datetime, list[PayeeEvent]] = {}
    for p in payees:
        groups.setdefault(p.handled_at, []).append(p)
    latest: list[datetime] = []  # latest[i]: the latest start of ops[0..i] (non-decreasing: bisectable)
    for start in plan.began:
        latest.append(start if not latest or start > latest[-1] else latest[-1])
    inserts: list[tuple[int, datetime, list[PayeeEvent]]] = []
    for handled_at, group in groups.items():
        positions = [at_trigger[p.event_id] for p in group if p.event_id in at_trigger]
        position = min(positions) if positions else bisect.bisect_right(latest, handled_at)
        inserts.append((position, handled_at, group))
    inserts.sort(key=lambda x: (x[0], x[1]))
    ops: list[Op] = []
    began: list[datetime] = []
    i = 0
    for position, handled_at, group in inserts:
        ops.extend(plan.ops[i:position])
        began.extend(plan.began[i:position])
        i = max(i, position)
        ops.extend(KeepPayee(p.event_id) for p in group)
        began.extend(handled_at for _ in group)
    ops.extend(plan.ops[i:])
    began.extend(plan.began[i:])
    plan.ops, plan.began, plan.triggers = ops, began, []
    return problems


# ---------------------------------------------------------------------------------------------
# What the sources yield, and what applying them did
# ---------------------------------------------------------------------------------------------


@dataclass
class SourceRead:
    wanted: dict[str, bytes]  # event id → the envelope as published, for the ids the live ledger decided
    total: int = 0  # application.assessed events in the history
    others: list[str] = field(default_factory=list)  # ids in the history the live ledger did not decide on

    def keep(self, wanted_ids: set[str], raw: bytes, event_id: str) -> None:
        self.total += 1
        if event_id in wanted_ids:
            self.wanted.setdefault(event_id, raw)
        else:
            self.others.append(event_id)


@dataclass
class ApplyResult:
    applied: int = 0  # operations applied (assessments decided + revocations + reviews)
    assessments: int = 0
    revocations: int = 0
    reviews: int = 0
    payment_steps: int = 0  # finalisations, payee events, batch steps and bank chunks applied
    missing: list[str] = field(default_factory=list)  # assessment ids decided live, absent from the source
    dead_lettered: list[str] = field(default_factory=list)  # dead-lettered by the replay
    failed_revocations: list[str] = field(default_factory=list)
    failed_reviews: list[str] = field(default_factory=list)
    failed_payments: list[str] = field(default_factory=list)  # a payment step the replay did not repeat alike
    seconds: float = 0.0

    def problems(self, source: str) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} assessments decided live are not in the {source} "
                       f"(first: {', '.join(self.missing[:3])})")
        if self.dead_lettered:
            out.append(f"{len(self.dead_lettered)} assessments decided live were dead-lettered on replay "
                       f"(first: {'; '.join(self.dead_lettered[:3])})")
        if self.failed_revocations:
            out.append(f"{len(self.failed_revocations)} revocations failed on replay "
                       f"(first: {'; '.join(self.failed_revocations[:3])})")
        if self.failed_reviews:
            out.append(f"{len(self.failed_reviews)} reviews failed on replay "
                       f"(first: {'; '.join(self.failed_reviews[:3])})")
        if self.failed_payments:
            out.append(f"{len(self.failed_payments)} payment steps differ on replay "
                       f"(first: {'; '.join(self.failed_payments[:3])})")
        return out


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------

# A ledger's state, table by table: key → the values STATE_COLUMNS names, in that order.
State = dict[str, dict[Any, tuple[Any, ...]]]

# What is compared, per table (each keyed by its primary key: the pool account, the application id,
# the journal seq, the head's id).
STATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "pools": ("cap_fen", "committed_fen"),
    "decisions": ("assessed_event_id", "program", "beneficiary", "year", "status", "entitlement_fen",
                  "awarded_fen", "correlation_id", "recorded_for", "data", "review_basis"),
    "awards": ("program", "beneficiary", "year", "subject", "overlap_applicant", "overlap_subject",
               "overlap_milestone", "amount_fen", "draws", "top_up_of", "journal_seq", "revoked", "overlap_key",
               "review"),
    "journal": ("hash", "kind", "application_id", "event_id", "postings", "prev_hash", "recorded_for"),
    "head": ("seq", "hash"),
    "revocations": ("reason", "revoked_by", "revoked_at", "amount_fen", "journal_seq", "event_id", "data",
                    "redecides"),
    "reviews": ("decision", "held_fen", "awarded_fen", "reason", "reviewed_by", "reviewed_by_name", "reviewed_at",
                "journal_seq", "event_id", "data"),
    "payees": ("applicant_id", "partner_id", "account_name", "account_number", "bank_code", "updated_at", "event_id"),
    "payment_orders": ("application_id", "partner_id", "applicant_id", "program", "year", "amount_fen", "status",
                       "batch_id", "reason_code", "reason", "finalized_event_id", "updated_at"),
    "payment_batches": ("status", "program", "year", "count", "control_sum_fen", "created_by", "created_at",
                        "approved_by", "approved_at", "sent_at", "document_sha256"),
    "payment_batch_items": ("position", "amount_fen", "account_name", "account_number", "bank_code", "status"),
    # the ledger's payment.* events (outbox id → type, envelope): what partners and intake were told
    "payment_events": ("type", "envelope"),
}
# Shown masked in a difference: the replay's report is not for payment officers only.
SECRET_COLUMNS = frozenset({"account_number"})


def _shown(column: str, value: Any) -> str:
    return repr(mask_account(value) if column in SECRET_COLUMNS and isinstance(value, str) else value)



@dataclass
class LiveSnapshot:
    plan: PlannedOps  # the operations in the live order, before the payee events are placed
    dead_lettered: set[str]  # assessment event ids the live ledger dead-lettered
    state: State
    payees_handled: dict[str, datetime] = field(default_factory=dict)  # payee event id → its inbox time
    pays: bool = False  # the live ledger has payees or payment orders (else no payee history is read)

    @property
    def ops(self) -> list[Op]:
        return self.plan.ops


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    detail: str

    def line(self) -> str:
        what = "pool" if self.table == "pools" else self.table
        return f"{what} {self.key}: {self.detail}"


def _unused_pools(pools: dict[Any, tuple[Any, ...]], other: dict[Any, tuple[Any, ...]]) -> set[Any]:
    # A pool row is created when a batch names it, before deciding; one named only by an event that was
    # then skipped or dead-lettered stays at 0. Such a row on one side only is not a difference.
    return {k for k, (_cap, committed) in pools.items() if committed == 0 and k not in other}


def compare_states(live: State, replayed: State) -> list[Difference]:
    """Every difference between two states, table by table."""
    diffs: list[Difference] = []
    for table, names in STATE_COLUMNS.items():
        a, b = live.get(table, {}), replayed.get(table, {})
        if table == "pools":
            a = {k: v for k, v in a.items() if k not in _unused_pools(a, b)}
            b = {k: v for k, v in b.items() if k not in _unused_pools(b, a)}
        for key in sorted(set(a) | set(b), key=lambda k: (str(type(k)), k)):
            if key not in b:
                diffs.append(Difference(table, str(key), "in the live ledger, not in the replay"))
            elif key not in a:
                diffs.append(Difference(table, str(key), "in the replay, not in the live ledger"))
            elif a[key] != b[key]:
                parts = [f"{col} live {_shown(col, x)} replay {_shown(col, y)}"
                         for col, x, y in zip(names, a[key], b[key], strict=True) if x != y]
                diffs.append(Difference(table, str(key), "; ".join(parts)))
    return diffs


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    equal: bool
    schema: str
    source: str
    ops: int
    assessments: int
    revocations: int
    reviews: int
    history_assessments: int
    not_decided_live: int  # in the history, not decided live: duplicates, dead-lettered or still pending
    differences: list[Difference]
    problems: list[str]
    read_seconds: float
    apply_seconds: float
    total_seconds: float
    payment_steps: int = 0

    @property
    def events_per_s(self) -> float:
        return self.ops / self.apply_seconds if self.apply_seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"replay {'EQUAL' if self.equal else 'DIFFERENT'}: source={self.source} scratch schema={self.schema}",
            f"  history: {self.history_assessments} assessments read; {self.assessments} decided and "
            f"{self.revocations} revocations and {self.reviews} reviews and {self.payment_steps} payment steps "
            f"replayed in the live order ({self.ops} operations); "
            f"{self.not_decided_live} not decided live (duplicates, dead-lettered or pending)",
            f"  time: read {self.read_seconds:.2f}s, apply {self.apply_seconds:.2f}s "
            f"({self.events_per_s:,.0f} events/s), total {self.total_seconds:.2f}s",
        ]
        for problem in self.problems:
            lines.append(f"  problem: {problem}")
        if self.differences:
            by_table: dict[str, list[Difference]] = {}
            for d in self.differences:
                by_table.setdefault(d.table, []).append(d)
            lines.append(f"  {len(self.differences)} differences:")
            for table, diffs in by_table.items():
                lines.append(f"    {table}: {len(diffs)}")
                for d in diffs[:MAX_LISTED]:
                    lines.append(f"      {d.line()}")
                if len(diffs) > MAX_LISTED:
                    lines.append(f"      ... and {len(diffs) - MAX_LISTED} more")
        return "\n".join(lines)
