"""The replay's pure parts: the operations to replay, what a source yielded, the diff between two
ledger states and the report. No I/O, no clock."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ledger.reviews.domain import ReviewDecision
from shared.contracts.envelope import Event, parse_event
from shared.contracts.events import AwardReviewed, AwardRevoked, parse_data
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


Op = Decide | Revoke | Review


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


def ops_from_history(rows: Iterable[tuple[str, str | None, str | None, bool | None]]) -> list[Op]:
    """The ledger's outbox in seq order, as (type, causation id, the envelope of a revocation or a
    review, whether that revocation re-decided its chain) → the operations to replay, in order.

    A decision needs only its cause: the assessment's id. What a revocation or a review caused (its
    chain's re-decisions, as award.decided and award.revoked events whose cause is it) is not an
    operation: replaying the revocation or the review repeats it. A revocation an upheld objection
    caused is one: the objection is not the ledger's history, the revocation is."""
    ops: list[Op] = []
    causes: set[str] = set()
    for type_, causation_id, envelope, redecides in rows:
        if causation_id is not None and causation_id in causes:
            continue
        if type_ == "award.decided":
            ops.append(Decide(str(causation_id)))
        elif type_ == "award.revoked" and envelope is not None:
            revocation = revoke_op(parse_event(envelope.encode()), bool(redecides))
            causes.add(str(revocation.event_id))
            ops.append(revocation)
        elif type_ == "award.reviewed" and envelope is not None:
            review = review_op(parse_event(envelope.encode()))
            causes.add(str(review.event_id))
            ops.append(review)
    return ops


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
    missing: list[str] = field(default_factory=list)  # assessment ids decided live, absent from the source
    dead_lettered: list[str] = field(default_factory=list)  # dead-lettered by the replay
    failed_revocations: list[str] = field(default_factory=list)
    failed_reviews: list[str] = field(default_factory=list)
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
}


@dataclass
class LiveSnapshot:
    ops: list[Op]
    dead_lettered: set[str]  # assessment event ids the live ledger dead-lettered
    state: State


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
                parts = [f"{col} live {x!r} replay {y!r}" for col, x, y in zip(names, a[key], b[key], strict=True)
                         if x != y]
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

    @property
    def events_per_s(self) -> float:
        return self.ops / self.apply_seconds if self.apply_seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"replay {'EQUAL' if self.equal else 'DIFFERENT'}: source={self.source} scratch schema={self.schema}",
            f"  history: {self.history_assessments} assessments read; {self.assessments} decided and "
            f"{self.revocations} revocations and {self.reviews} reviews replayed in the live order "
            f"({self.ops} operations); "
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
