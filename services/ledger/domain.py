"""Ledger domain: deciding an award against pools and the overlap rule. Pure: no I/O, no clock.

Everything here works on plain dataclasses that the service loads from rows. Money is integer
fen (shared.kernel.money); the wire carries two-decimal yuan strings.

Invariants (TigerBeetle style, checked on every path that touches them, also under ``python -O``):
a pool's committed is never negative and never above its cap; a draw never exceeds the pool's
room; an award never exceeds its entitlement (nor, for a top-up, the difference due).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import ValidationError

from shared.contracts.events import ANY_BENEFICIARY, ApplicationAssessed, AwardDecided, PoolClaim
from shared.kernel.money import Fen, format_fen, parse_amount
from shared.kernel.subjects import SubjectRefused, invisible_characters, subject_key
from shared.policy.reasons import Reason

T = TypeVar("T")

# 002, last paragraph: 本若干意见与本市其他同类政策意见有重复的,按照"从优、就高、不重复"的原则予以支持.
OVERLAP_CITATION = "002 末段 (从优、就高、不重复)"

STATUS_APPROVED = "approved"
STATUS_PARTIALLY_APPROVED = "partially_approved"
STATUS_REJECTED = "rejected"
STATUS_INELIGIBLE = "ineligible"
STATUS_PENDING_REVIEW = "pending_review"

# A program's review mode (the catalog's `review`): a reviewer settles the amount (核定), or the
# formula's award stands at once. A receipt from before review modes is "auto".
REVIEW_REQUIRED = "required"
REVIEW_AUTO = "auto"
REVIEW_MODES = (REVIEW_REQUIRED, REVIEW_AUTO)

# Where an award stands with its reviewer (None: decided at once, no review).
AWARD_PENDING = "pending"  # held on every pool it draws on, until a reviewer approves or rejects it
AWARD_APPROVED = "approved"  # settled by a reviewer: what it holds stands
AWARD_REJECTED = "rejected"  # rejected by a reviewer: nothing held any more, no longer live (revoked)
AWARD_REVIEW_STATES = (None, AWARD_PENDING, AWARD_APPROVED, AWARD_REJECTED)

CAP_PARTLY_USED = "CAP_PARTLY_USED"
CAP_EXHAUSTED = "CAP_EXHAUSTED"
DUPLICATE = "DUPLICATE"
TOP_UP = "TOP_UP"
ZERO_ENTITLEMENT = "ZERO_ENTITLEMENT"
REVOKED = "REVOKED"
REDECIDED = "REDECIDED"
REVIEW_REDUCED = "REVIEW_REDUCED"
REVIEW_REJECTED = "REVIEW_REJECTED"
OBJECTION_UPHELD = "OBJECTION_UPHELD"

# The pool scope whose subject is a call id, not a subject: never folded (PoolClaim's docs).
SCOPE_CALL = "call"


class LedgerInvariantError(AssertionError):
    """A ledger invariant does not hold: a bug, never a business outcome. Stop, do not commit."""


def _invariant(condition: bool, message: str) -> None:
    # An explicit raise instead of `assert`, so the checks survive `python -O`.
    if not condition:
        raise LedgerInvariantError(message)


# ---------------------------------------------------------------------------------------------
# Subject keys
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _ascii_keys() -> dict[int, str]:
    # For ASCII text every step of subject_key (NFKC, case folding, separators, the skeleton of
    # the capital) works character by character, so the key of an ASCII subject is the keys of
    # its characters joined: a translation table built from subject_key itself (a unit test holds
    # the two together). Characters that fold to nothing (separators, controls) map to "".
    table: dict[int, str] = {}
    for code in range(128):
        try:
            table[code] = subject_key(chr(code))
        except SubjectRefused:
            table[code] = ""
    return table


@lru_cache(maxsize=65_536)
def _folded(subject: str) -> str:
    hidden = {chr(int(code[2:], 16)) for code in invisible_characters(subject)}
    try:
        return subject_key("".join(c for c in subject if c not in hidden) if hidden else subject)
    except SubjectRefused:
        return ""


def ledger_subject_key(subject: str) -> str:
    """The key the ledger compares a subject by (the overlap key, per-subject and per-project pools).

    shared.kernel.subjects.subject_key, made total for what the ledger receives and holds: receipts
    from before subjects were keyed (history, replays) and stored rows. Characters a reader cannot
    see are dropped rather than refused (eligibility refuses them at the door; history cannot be
    refused), and a subject that folds to nothing is its own key. For a subject that already is a
    key (what eligibility sends now) this is the key itself.
    """
    key = subject.translate(_ascii_keys()) if subject.isascii() else _folded(subject)
    return key or subject


# ---------------------------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolKey:
    """One pool instance: (pool, beneficiary, year), (pool, beneficiary, subject), a project's
    (pool, ANY_BENEFICIARY, subject) or a call's budget (call-budget, ANY_BENEFICIARY, year, call id)."""

    pool: str
    beneficiary: str
    year: int | None
    subject: str | None

    def sort_key(self) -> tuple[str, str, int, int, int, str]:
        """Total order used as the lock order (None sorts before any value)."""
        return (
            self.pool,
            self.beneficiary,
            0 if self.year is None else 1,
            self.year or 0,
            0 if self.subject is None else 1,
            self.subject or "",
        )

    def __lt__(self, other: PoolKey) -> bool:
        return self.sort_key() < other.sort_key()


def lock_order(keys: Iterable[PoolKey]) -> list[PoolKey]:
    """Distinct keys in the one order every instance locks pool rows in (so none deadlocks)."""
    return sorted(set(keys), key=PoolKey.sort_key)


@dataclass(frozen=True)
class PoolState:
    key: PoolKey
    cap_fen: Fen
    committed_fen: Fen
    # Whether the journal has this pool's cap (a cap_open entry); the first decision that uses a
    # pool whose cap it has not journals it first (services.ledger.journal.domain, "Caps").
    cap_journaled: bool = False

    def __post_init__(self) -> None:
        # (the messages are formatted only on failure: these run for every pool state)
        if not (isinstance(self.cap_fen, int) and self.cap_fen >= 0):
            raise LedgerInvariantError(f"{self.key}: cap must be >= 0")
        if not (isinstance(self.committed_fen, int) and 0 <= self.committed_fen <= self.cap_fen):
            raise LedgerInvariantError(f"{self.key}: committed {self.committed_fen} outside [0, cap {self.cap_fen}]")

    @property
    def room_fen(self) -> Fen:
        return self.cap_fen - self.committed_fen

    def apply(self, delta_fen: Fen) -> PoolState:
        """A new state with delta added to committed (draw > 0, restore < 0)."""
        if delta_fen > 0:
            if not delta_fen <= self.room_fen:
                raise LedgerInvariantError(f"{self.key}: draw {delta_fen} exceeds room {self.room_fen}")
        elif not -delta_fen <= self.committed_fen:
            raise LedgerInvariantError(f"{self.key}: restore {-delta_fen} exceeds committed")
        return PoolState(self.key, self.cap_fen, self.committed_fen + delta_fen, self.cap_journaled)


@dataclass(frozen=True)
class PoolBalance:
    """A pool row as stored: the one snapshot of a pool that balances, the dashboard, verify and
    replay read. No invariant is checked here (unlike PoolState): verify and replay must be able
    to see, and report, a row someone altered."""

    key: PoolKey
    cap_fen: Fen
    committed_fen: Fen
    held_fen: Fen = 0  # the part of committed held for review (awards pending review)

    @property
    def available_fen(self) -> Fen:
        return self.cap_fen - self.committed_fen

    def key_wire(self) -> dict[str, Any]:
        return pool_key_wire(self.key)


def pool_key_wire(key: PoolKey) -> dict[str, Any]:
    """A pool key as the wire names it (draws, verify's mismatches)."""
    return {"pool": key.pool, "beneficiary": key.beneficiary, "year": key.year, "subject": key.subject}


@dataclass(frozen=True)
class PoolSpec:
    """A pool as an assessment receipt names it: key, cap, scope and the citation of the cap.

    `subject_key` (ledger_subject_key of the subject; None for pools without a subject and for
    call budgets) is what the repository finds an existing pool row by: a row opened under
    another spelling of the same subject (before subjects were keyed) is the same pool."""

    key: PoolKey
    cap_fen: Fen
    citation: str
    scope: str
    subject_key: str | None = None


@dataclass(frozen=True)
class OverlapKey:
    """不重复: one live award (chain) per (applicant, subject, milestone), across programs; the
    subject is its key (ledger_subject_key), so look-alike spellings are one chain."""

    applicant: str
    subject: str
    milestone: str


# ---------------------------------------------------------------------------------------------
# Parsing the assessment receipt
# ---------------------------------------------------------------------------------------------


def parse_receipt(raw: Any) -> ApplicationAssessed:
    """An `application.assessed` receipt checked by its contract (shared.contracts.events).

    ValueError names the first offending field under `receipt` (`receipt.pools[0].cap: ...`), as
    the ledger's own checks in Assessment.from_receipt do: a dead letter says which field to fix.
    """
    try:
        return ApplicationAssessed.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        raise ValueError(f"receipt{where}: {error['msg'].removeprefix('Value error, ')}") from None


def _needed(value: T | None, name: str) -> T:
    # The contract leaves these optional (intake's projection needs only `eligible`); the ledger
    # cannot decide without them.
    if value is None:
        raise ValueError(f"receipt.{name}: missing")
    return value


def _pool_spec(claim: PoolClaim, where: str) -> PoolSpec:
    # ':' separates the parts of a journal account name; only the subject (last part) may hold one.
    if ":" in claim.pool or ":" in claim.beneficiary:
        raise ValueError(f"{where}: pool and beneficiary must not contain ':'")
    key = PoolKey(claim.pool, claim.beneficiary, claim.year, claim.subject)
    if key.year is None and key.subject is None:
        raise ValueError(f"{where}: a pool needs a year or a subject")
    folded = None if claim.subject is None or claim.scope == SCOPE_CALL else ledger_subject_key(claim.subject)
    return PoolSpec(key, parse_amount(claim.cap), claim.citation, claim.scope, folded)


@dataclass(frozen=True)
class RuleLine:
    """One rule the engine checked, with the paragraph it cites (from the receipt)."""

    rule: str
    passed: bool
    detail: str
    citation: str

    def to_wire(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail, "citation": self.citation}


@dataclass(frozen=True)
class ReviewBasis:
    """What a reviewer weighs beside the hold, kept from the receipt of a program under review:
    the amount asked for (None when the application asked for none) and every rule checked."""

    requested_fen: Fen | None
    rules: tuple[RuleLine, ...]

    def to_stored(self) -> dict[str, Any]:
        return {"requested_amount_fen": self.requested_fen, "rules": [r.to_wire() for r in self.rules]}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> ReviewBasis:
        return cls(stored.get("requested_amount_fen"), tuple(
            RuleLine(str(r.get("rule", "")), bool(r.get("passed")), str(r.get("detail", "")),
                     str(r.get("citation", ""))) for r in stored.get("rules") or ()))


@dataclass(frozen=True)
class Assessment:
    """What the ledger needs from an `application.assessed` receipt."""

    application_id: str
    program: str
    year: int
    applicant_id: str
    subject: str
    eligible: bool
    entitlement_fen: Fen
    reasons: tuple[Reason, ...]
    pools: tuple[PoolSpec, ...]  # in lock order
    overlap: OverlapKey | None  # always set when eligible; its subject is the key
    catalog_version: str | None = None
    overlap_subject: str | None = None  # overlap.subject as the receipt wrote it (stored beside the key)
    review: str = REVIEW_AUTO  # the program's review mode
    basis: ReviewBasis | None = None  # for a program under review (eligible): what its reviewer weighs
    call_id: str | None = None  # the call (申报批次) assessed under; None in receipts from before calls

    @classmethod
    def from_receipt(cls, receipt: ApplicationAssessed | Mapping[str, Any]) -> Assessment:
        """The receipt (parsed, or as received) checked for what deciding needs; ValueError names
        the first offending field."""
        r = receipt if isinstance(receipt, ApplicationAssessed) else parse_receipt(receipt)
        pools = [_pool_spec(claim, f"receipt.pools[{i}]") for i, claim in enumerate(r.pools)]
        if len({p.key for p in pools}) != len(pools):
            raise ValueError("receipt.pools: the same pool is listed twice")
        overlap: OverlapKey | None = None
        if r.overlap is not None:
            overlap = OverlapKey(r.overlap.applicant, ledger_subject_key(r.overlap.subject), r.overlap.milestone)
        elif r.eligible:
            raise ValueError("receipt.overlap: missing (required when eligible)")
        review = REVIEW_AUTO if r.review is None else r.review
        if review not in REVIEW_MODES:
            raise ValueError(f"receipt.review: must be one of {', '.join(REVIEW_MODES)}")
        return cls(
            application_id=_needed(r.application_id, "application_id"),
            program=_needed(r.program, "program"),
            year=_needed(r.year, "year"),
            applicant_id=_needed(r.applicant, "applicant").id,
            subject=_needed(r.subject, "subject"),
            eligible=r.eligible,
            entitlement_fen=parse_amount(_needed(r.entitlement, "entitlement")),
            reasons=tuple(Reason(x.code, x.message, x.citation or "") for x in r.reasons),
            pools=tuple(sorted(pools, key=lambda p: p.key.sort_key())),
            overlap=overlap,
            catalog_version=r.catalog_version,
            overlap_subject=r.overlap.subject if r.overlap is not None else None,
            review=review,
            basis=_basis(r) if review == REVIEW_REQUIRED and r.eligible else None,
            call_id=r.call_id,
        )

    def with_pools_at(self, rows: Mapping[PoolKey, PoolKey]) -> Assessment:
        """The assessment drawing on the pool rows its pools were found at (`rows`: the receipt's key
        → the row's key, for the pools found under another spelling of their subject)."""
        if not any(rows.get(spec.key, spec.key) != spec.key for spec in self.pools):
            return self
        pools = [replace(spec, key=rows.get(spec.key, spec.key)) for spec in self.pools]
        return replace(self, pools=tuple(sorted(pools, key=lambda p: p.key.sort_key())))


def _basis(r: ApplicationAssessed) -> ReviewBasis:
    requested = r.inputs.requested_amount if r.inputs is not None else None
    return ReviewBasis(
        None if requested is None else parse_amount(requested),
        tuple(RuleLine(x.rule or "", x.passed, x.detail or "", x.citation or "") for x in r.rules),
    )


def pool_keys_of(receipt: Mapping[str, Any] | Assessment) -> list[tuple[PoolKey, Fen, str]]:
    """(key, cap_fen, citation) of every pool the receipt touches, in lock order."""
    assessment = receipt if isinstance(receipt, Assessment) else Assessment.from_receipt(receipt)
    return [(p.key, p.cap_fen, p.citation) for p in assessment.pools]


def pool_states_for(assessment: Assessment, loaded: Mapping[PoolKey, PoolState]) -> dict[PoolKey, PoolState]:
    """The states of the assessment's pools: loaded rows, or fresh ones (cap from the receipt)."""
    return {
        spec.key: loaded.get(spec.key) or PoolState(spec.key, spec.cap_fen, 0) for spec in assessment.pools
    }


# ---------------------------------------------------------------------------------------------
# Awards and decisions
# ---------------------------------------------------------------------------------------------

Draw = tuple[PoolKey, Fen]


@dataclass(frozen=True)
class LiveAward:
    """The live award chain of an overlap key: its base application, program and total live amount."""

    application_id: str
    program: str
    amount_fen: Fen


@dataclass(frozen=True)
class Award:
    """A granted award (awarded > 0) as the service stores it, with what it drew from each pool."""

    application_id: str
    program: str
    beneficiary: str
    overlap: OverlapKey
    amount_fen: Fen
    draws: tuple[Draw, ...]
    top_up_of: str | None = None
    review: str | None = None  # AWARD_PENDING (a hold), AWARD_APPROVED, or None (decided at once)

    def __post_init__(self) -> None:
        if not self.amount_fen > 0:
            raise LedgerInvariantError(f"{self.application_id}: an award is > 0")
        if not all(amount == self.amount_fen for _, amount in self.draws):
            raise LedgerInvariantError(f"{self.application_id}: every draw equals the award")
        if self.review not in AWARD_REVIEW_STATES:
            raise LedgerInvariantError(f"{self.application_id}: unknown review state {self.review!r}")

    @property
    def held(self) -> bool:
        """Held for review: it counts on every pool, but nothing is owed until a reviewer approves."""
        return self.review == AWARD_PENDING


def live_award_of(live_awards: Sequence[Award]) -> LiveAward | None:
    """Fold the live awards of one overlap key (in decision order) into the chain seen by decide_award.

    The chain's application is its live base (the award that is no top-up), or the earliest live
    one when its base was revoked; its program that one's, its amount the sum of all live amounts
    (base plus top-ups still live).
    """
    if not live_awards:
        return None
    overlaps = {a.overlap for a in live_awards}
    _invariant(len(overlaps) == 1, "live awards of one chain share one overlap key")
    base = next((a for a in live_awards if a.top_up_of is None), live_awards[0])
    return LiveAward(base.application_id, base.program, sum(a.amount_fen for a in live_awards))


@dataclass(frozen=True)
class Decision:
    application_id: str
    status: str
    entitlement_fen: Fen
    awarded_fen: Fen
    reasons: tuple[Reason, ...]
    limited_by: str | None = None
    top_up_of: str | None = None
    draws: tuple[Draw, ...] = ()
    limited_by_key: PoolKey | None = None
    duplicate_of: str | None = None  # the live chain's application, for DUPLICATE
    overlap: OverlapKey | None = None
    program: str = ""
    beneficiary: str = ""
    due_fen: Fen = field(default=0)  # entitlement, or entitlement − live amount for a top-up
    review: str = REVIEW_AUTO  # the program's review mode

    @property
    def held(self) -> bool:
        """Pending review: `awarded_fen` is held on every pool it draws on, nothing is granted yet."""
        return self.status == STATUS_PENDING_REVIEW

    @property
    def granted_fen(self) -> Fen:
        """What is granted now: nothing while held for review."""
        return 0 if self.held else self.awarded_fen

    def to_wire(self) -> dict[str, Any]:
        """The decision's part of award.decided (`awarded` is what is granted: nothing while held;
        award.decided adds `held` and `review`, see review_wire)."""
        return {
            "status": self.status,
            "entitlement": format_fen(self.entitlement_fen),
            "awarded": format_fen(self.granted_fen),
            "limited_by": self.limited_by,
            "reasons": [r.to_wire() for r in self.reasons],
            "top_up_of": self.top_up_of,
            "draws": draws_wire(self.draws),
        }

    def review_wire(self) -> dict[str, Any]:
        """The last keys of award.decided: `held` (only while pending review: what the pools hold
        for the reviewer) and the program's `review` mode."""
        return {"held": format_fen(self.awarded_fen), "review": self.review} if self.held else {"review": self.review}

    def to_award(self) -> Award | None:
        """The award to store (a hold while pending review), or None when nothing was awarded."""
        if self.awarded_fen == 0:
            return None
        _invariant(self.overlap is not None, "an award has an overlap key")
        assert self.overlap is not None
        return Award(self.application_id, self.program, self.beneficiary, self.overlap,
                     self.awarded_fen, self.draws, self.top_up_of, AWARD_PENDING if self.held else None)


def draws_wire(draws: Iterable[Draw]) -> list[dict[str, Any]]:
    """Draws as the wire carries them: the pool's key and the amount in yuan."""
    return [{**pool_key_wire(k), "amount": format_fen(amount)} for k, amount in draws]


def _room(specs: Sequence[PoolSpec], pools: Mapping[PoolKey, PoolState]) -> tuple[Fen | None, PoolSpec | None]:
    """Least room over the pools (first in lock order on ties) and the pool that has it."""
    least: Fen | None = None
    limiting: PoolSpec | None = None
    for spec in specs:
        state = pools.get(spec.key) or PoolState(spec.key, spec.cap_fen, 0)
        if state.key != spec.key:
            raise LedgerInvariantError(f"pool state filed under the wrong key: {state.key}")
        if least is None or state.room_fen < least:
            least, limiting = state.room_fen, spec
    return least, limiting


def decide_award(
    assessment: Assessment, pools: Mapping[PoolKey, PoolState], live_award: LiveAward | None
) -> Decision:
    """Award = min(entitlement [− live chain amount, for a top-up], room of every touched pool).

    A pool missing from `pools` is taken as fresh (committed 0, cap from the receipt); a loaded
    pool's own cap wins over the receipt's (the row carries the CHECK that guards it). Under a
    program whose review is required, an award is held for its reviewer (pending_review): it draws
    on the pools all the same, so no other application can take the room while a person decides.
    """
    a = assessment

    def decision(status: str, awarded_fen: Fen, reasons: Sequence[Reason], **extra: Any) -> Decision:
        return Decision(application_id=a.application_id, status=status, entitlement_fen=a.entitlement_fen,
                        awarded_fen=awarded_fen, reasons=tuple(reasons), overlap=a.overlap,
                        program=a.program, beneficiary=a.applicant_id, review=a.review, **extra)

    if not a.eligible:
        return decision(STATUS_INELIGIBLE, 0, a.reasons)

    due = a.entitlement_fen
    top_up_of: str | None = None
    reasons: list[Reason] = []
    if live_award is not None:
        _invariant(live_award.amount_fen >= 0, "a live award is not negative")
        if a.entitlement_fen <= live_award.amount_fen:
            msg = (f"{a.overlap} already holds live award {live_award.application_id} "
                   f"({live_award.program}) of {format_fen(live_award.amount_fen)}; this entitlement "
                   f"of {format_fen(a.entitlement_fen)} is not higher")
            return decision(STATUS_REJECTED, 0, [Reason(DUPLICATE, msg, OVERLAP_CITATION)],
                            duplicate_of=live_award.application_id)
        due = a.entitlement_fen - live_award.amount_fen
        top_up_of = live_award.application_id
        reasons.append(Reason(
            TOP_UP,
            f"{a.overlap} already holds {format_fen(live_award.amount_fen)} (award "
            f"{live_award.application_id}, {live_award.program}); only the difference "
            f"{format_fen(due)} is due",
            OVERLAP_CITATION,
        ))
    elif due == 0:
        return decision(STATUS_REJECTED, 0, [Reason(ZERO_ENTITLEMENT, "the entitlement is 0.00", "")])

    room, limiting = _room(a.pools, pools)
    awarded = due if room is None else min(due, room)
    _invariant(0 <= awarded <= due <= a.entitlement_fen, "awarded <= due <= entitlement")
    limited_by: str | None = None
    limited_key: PoolKey | None = None
    if awarded < due:
        assert limiting is not None and room is not None
        limited_by, limited_key = limiting.key.pool, limiting.key
        code = CAP_PARTLY_USED if awarded > 0 else CAP_EXHAUSTED
        reasons.append(Reason(
            code,
            f"pool {limiting.key.pool} ({pool_instance_text(limiting.key)}) has "
            f"{format_fen(room)} left; {format_fen(awarded)} of {format_fen(due)} granted",
            limiting.citation,
        ))
    if awarded == 0:
        return decision(STATUS_REJECTED, 0, reasons, limited_by=limited_by, limited_by_key=limited_key,
                        due_fen=due)
    draws = tuple((spec.key, awarded) for spec in a.pools)
    for key, amount in draws:
        state = pools.get(key)
        if not (state is None or amount <= state.room_fen):
            raise LedgerInvariantError(f"{key}: draw {amount} exceeds room")
    status = STATUS_APPROVED if awarded == due else STATUS_PARTIALLY_APPROVED
    if a.review == REVIEW_REQUIRED:
        status = STATUS_PENDING_REVIEW
    return decision(status, awarded, reasons, limited_by=limited_by, limited_by_key=limited_key,
                    top_up_of=top_up_of, draws=draws, due_fen=due)


def pool_instance_text(key: PoolKey) -> str:
    """Which instance of a pool, in words: whose (every applicant's for a shared pool) and which
    year, subject or call."""
    if key.beneficiary != ANY_BENEFICIARY:
        return f"{key.beneficiary}, {key.year if key.year is not None else key.subject}"
    if key.year is not None and key.subject is not None:  # a call's budget
        return f"call {key.subject}, {key.year}"
    return f"every applicant, {key.subject if key.subject is not None else key.year}"


def apply_draws(pools: Mapping[PoolKey, PoolState], draws: Iterable[Draw]) -> dict[PoolKey, PoolState]:
    """New pool states with each draw (or restore, when negative) added to committed.

    Every key must be present (see pool_states_for); invariants are checked per pool.
    """
    out = dict(pools)
    for key, delta in draws:
        if key not in out:
            raise LedgerInvariantError(f"no state loaded for pool {key}")
        out[key] = out[key].apply(delta)
    return out


def revoke(award: Award) -> list[Draw]:
    """What to add to each pool to give the award back: (key, −amount) per draw, in lock order.

    Only this award's own draws; what then happens to the rest of its chain is redecide_chain's.
    """
    return release(award, award.amount_fen)


def release(award: Award, amount_fen: Fen) -> list[Draw]:
    """What to add to each pool for the award to give `amount_fen` of what it holds back (all of
    it: a revocation, a rejection; part: what a reviewer did not approve), in lock order."""
    _invariant(0 < amount_fen <= award.amount_fen, "a release gives back a positive part of the award")
    return [(key, -amount_fen) for key, _ in sorted(award.draws, key=lambda d: d[0].sort_key())]


def revocation_reason(message: str) -> Reason:
    return Reason(REVOKED, message, "")


# ---------------------------------------------------------------------------------------------
# Re-deciding an overlap chain after a revocation (POLICY.md, "Support years and caps")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainMember:
    """A live application of an overlap chain, as the ledger decided it: granted (award) or not
    (a duplicate, a capped or a zero award), never revoked, never ineligible.

    `assessment` is rebuilt from the stored decision: its entitlement, its pools (as the rows they
    were found at, with the rows' caps) and its overlap key; `seq` is the order it was decided in."""

    assessment: Assessment
    seq: int
    award: Award | None
    decision: AwardDecided  # as last published
    correlation_id: str


@dataclass(frozen=True)
class Redecision:
    """What one later member of a chain gets now, against what it held."""

    member: ChainMember
    decision: Decision
    before: Award | None
    after: Award | None

    @property
    def delta_fen(self) -> Fen:
        return (self.after.amount_fen if self.after else 0) - (self.before.amount_fen if self.before else 0)

    @property
    def changed(self) -> bool:
        """Its amount moved, or it now hangs off another base of the chain."""
        if (self.before is None) != (self.after is None):
            return True
        return self.before is not None and self.after is not None and (
            self.before.amount_fen != self.after.amount_fen or self.before.top_up_of != self.after.top_up_of)


def redecided_reason(revoked_application_id: str) -> Reason:
    return Reason(REDECIDED, f"re-decided after award {revoked_application_id} of the same subject and "
                             f"milestone was revoked", OVERLAP_CITATION)


def settled(award: Award | None) -> bool:
    """An award a reviewer approved: what it holds stands, whatever happens to its chain."""
    return award is not None and award.review == AWARD_APPROVED


def redecide_chain(
    revoked: Award, revoked_seq: int, members: Sequence[ChainMember], pools: Mapping[PoolKey, PoolState],
    kept: Award | None = None,
) -> tuple[list[Redecision], dict[PoolKey, PoolState]]:
    """The chain as if `revoked` had never been filed (or had been decided as `kept`, what a
    reviewer approved of it): every member decided after it (`seq` order) decided again, in that
    order, against the pools as they are once `revoked` gave its amount (or the difference) back.

    Members decided before it keep what they hold (they were decided without it); their live
    awards (and `kept`) are the chain the later ones are measured against. Every later member's
    live award is released first, then each is decided with decide_award as when it was filed, so
    a later duplicate becomes the base or a top-up, and a top-up grows by what the revoked award
    covered, pools permitting; a later member whose award a reviewer approved keeps it as it
    stands (settled), and one under review is held again. `pools` holds a state for every pool of
    every member (restores are checked against them); returns each re-decided member's outcome
    and the pools after all of them.
    """
    ordered = sorted(members, key=lambda m: m.seq)
    _invariant(all(m.assessment.application_id != revoked.application_id for m in ordered),
               "the revoked award is no member of its chain any more")
    chain = [m.award for m in ordered if m.seq < revoked_seq and m.award is not None]
    if kept is not None:
        _invariant(kept.application_id == revoked.application_id and kept.amount_fen < revoked.amount_fen,
                   "what is kept of an award is less of the same award")
        chain.append(kept)
    later = [m for m in ordered if m.seq > revoked_seq]
    states = apply_draws(pools, [d for m in later if m.award is not None and not settled(m.award)
                                 for d in revoke(m.award)])
    reason = redecided_reason(revoked.application_id)
    out: list[Redecision] = []
    for member in later:
        if settled(member.award):
            assert member.award is not None
            chain.append(member.award)
            continue
        states.update(pool_states_for(member.assessment, states))
        decision = decide_award(member.assessment, states, live_award_of(chain))
        decision = replace(decision, reasons=(reason, *decision.reasons))
        states = apply_draws(states, decision.draws)
        after = decision.to_award()
        if after is not None:
            chain.append(after)
        out.append(Redecision(member, decision, member.award, after))
    return out, states


# ---------------------------------------------------------------------------------------------
# What a batch or a revocation writes (the repository stores these as they are)
# ---------------------------------------------------------------------------------------------


@dataclass
class DecisionRow:
    application_id: str
    assessed_event_id: uuid.UUID
    decided_event_id: uuid.UUID
    program: str
    beneficiary: str
    year: int
    status: str
    entitlement_fen: Fen
    awarded_fen: Fen
    correlation_id: str
    recorded_for: str
    data: dict[str, Any]  # the award.decided data, as published but for `call_id` (as_stored)
    overlap: OverlapKey | None = None  # the chain it belongs to (eligible decisions)
    pools: tuple[PoolKey, ...] = ()  # the pool rows it was decided against (eligible decisions)
    basis: ReviewBasis | None = None  # a program under review: what its reviewer weighs
    call_id: str | None = None  # the receipt's call (decisions.call_id: not in `data`, see with_call)


@dataclass(frozen=True)
class DecisionUpdate:
    """A re-decided application's decision, as published again."""

    application_id: str
    status: str
    awarded_fen: Fen
    decided_event_id: uuid.UUID
    data: dict[str, Any]  # the award.decided data, as published but for `call_id` (as_stored)


@dataclass
class AwardRow:
    award: Award
    year: int
    subject: str
    journal_seq: int
    revoked: bool = False
    overlap_subject: str | None = None  # as the receipt wrote it (None: the key)
    in_chain: bool = True  # False: a chain left out of its key by the subject-key migration (a clash)


@dataclass(frozen=True)
class RevocationNote:
    """Who revoked an award, why and when, as the awards list shows it."""

    reason: str | None
    revoked_by: str | None
    revoked_at: datetime | None
    revoked_by_name: str | None = None  # a staff member's name; None for the bootstrap identities


@dataclass(frozen=True)
class AwardListing:
    row: AwardRow
    revocation: RevocationNote | None  # None while the award is live


@dataclass(frozen=True)
class ListFilter:
    """What the balances, awards and dashboard lists are narrowed by (None: any)."""

    beneficiary: str | None = None
    year: int | None = None
    program: str | None = None


@dataclass(frozen=True)
class RevocableAward:
    """A granted award with what a revocation needs from its decision."""

    row: AwardRow
    decision: AwardDecided  # as published, and stored with the decision
    correlation_id: str


@dataclass
class RevocationRow:
    application_id: str
    reason: str
    revoked_by: str
    revoked_at: datetime  # the operator's clock, or the recorded time on replay
    amount_fen: Fen
    journal_seq: int
    event_id: uuid.UUID
    data: dict[str, Any]  # the award.revoked data, as published
    redecides: bool = True  # the rest of its chain was re-decided (every revocation made since 0004)


@dataclass(frozen=True)
class SubjectClash:
    """Rows that fold to one subject key, kept apart by the subject-key migration (0004)."""

    id: int
    kind: str  # pool | overlap_chain
    subject_key: str
    scope: dict[str, Any]
    kept: str
    members: list[dict[str, Any]]
    found_at: datetime


def revoked_data(award: RevocableAward, *, reason: str, revoked_by: str, revoked_at: datetime) -> dict[str, Any]:
    """The award.revoked data, as published (and stored in revocations.data)."""
    row, decision = award.row, award.decision
    return {
        "application_id": row.award.application_id,
        "partner_id": decision.partner_id,
        "program": row.award.program,
        "year": row.year,
        "applicant": decision.applicant.to_data() if decision.applicant else {"id": row.award.beneficiary, "name": None},
        "subject": row.subject,
        "amount": format_fen(row.award.amount_fen),
        "reason": reason,
        "revoked_by": revoked_by,
        "revoked_at": revoked_at.isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# The call (申报批次) on the wire, not in the stored data
# ---------------------------------------------------------------------------------------------

CALL_ID = "call_id"


def with_call(data: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    """An award event's data as published: the receipt's `call_id` last, when it named a call.

    The stored copies (decisions.data, reviews.data) leave it out (as_stored): rows stored before
    migration 0009 have none, and replay compares that data with what it rebuilds, so a key added
    there would make every older row differ. The call is kept in decisions.call_id instead."""
    return data if call_id is None else {**data, CALL_ID: call_id}


def as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """An award event's data as decisions.data and reviews.data keep it: without `call_id`."""
    return {k: v for k, v in data.items() if k != CALL_ID}
