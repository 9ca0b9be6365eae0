"""Double-entry, hash-chained journal. Pure: builds, encodes, hashes and verifies entries.

Accounts (every part after the kind is taken verbatim from the receipt):

- ``pool:<pool>:<beneficiary>:<year>`` for a pool without a subject, e.g.
  ``pool:GT-EQUITY/beneficiary-year:91310115MA1H7G0L0C:2024``;
  ``pool:<pool>:<beneficiary>:<year or empty>:<subject>`` for a pool with a subject, e.g.
  ``pool:GT-CLIN/subject:12310000425012345X::P-1``. The subject is last, so it may contain ':'.
  The balance of a pool account is minus its committed amount (availability drawn down).
- ``award:<application_id>``: the award's clearing account.
- ``payable:<beneficiary>``: what the state owes the beneficiary.
- ``held:<beneficiary>``: what is held for the beneficiary while a reviewer decides (核定).
- ``cap:<pool>:<beneficiary>:<year>[:<subject>]`` (the pool account's parts after ``pool:``): the
  room the policy gives that pool; its balance is the pool's cap. Its counterpart is
  ``policy:caps``, the policy's side of every cap (minus the sum of all caps). Neither is money.

An award (or top-up) of X drawing on pools K1..Kn (lock order) posts, in this order:
``(pool:Ki, −X), (award:A, +X)`` for each pool, then ``(award:A, −X), (payable:B, +X)``. Each pair
sums to zero, so the entry does. Every pool is charged X (caps are separate dimensions), while the
beneficiary is owed X once; with n pools the award account therefore keeps (n − 1)·X: the cap
usage that is not money. A revocation is the exact negation of the award's postings as the award
stands, same order. A re-decision (the rest of an overlap chain decided again after a revocation)
moves the difference D the same way (D < 0 gives back).

Two phases (ARCHITECTURE.md, "Ledgering"): an award under review is first a *hold*, posted like
an award but to ``held:<beneficiary>`` instead of ``payable:`` (the pools are drawn all the same,
nothing is owed yet). A reviewer's *approval* of A moves ``(held:B, −A), (payable:B, +A)``; what
is not approved is *released* (the hold's postings for that part, negated: back to every pool),
a *rejection* releases all of it. Once approved, the award stands as an award of A would: its
revocation is the negation of award_postings(A), which is what hold + approval + release net to.

Caps (ARCHITECTURE.md, "Ledgering"): the first decision that uses a pool journals its cap before
anything else it writes, as a ``cap_open`` entry ``(cap:P, +cap), (policy:caps, −cap)`` (a zero cap:
the single posting ``(cap:P, 0)``, so the entry still names its pool); a changed cap would be a
``cap_amend`` of the difference. A cap entry's application_id is the pool account it is about, its
event_id the event that caused it, so entries of an application never include a cap's. Verify
re-derives every pool's cap (the cap account's balance) and committed (minus the pool account's
balance) from these entries alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.ledger.domain import Award, PoolKey

GENESIS_HASH = "0" * 64
CAP_KINDS = ("cap_open", "cap_amend")
# Paying (services.ledger.payments.domain): finalisation posts, then sent, settled, failed, returned, cancelled.
PAYMENT_KINDS = ("posting", "payment_sent", "payment_settled", "payment_failed", "payment_returned", "payment_cancelled")
KINDS = ("award", "top_up", "revocation", "redecision", "hold", "approval", "release", "rejection", *CAP_KINDS,
         *PAYMENT_KINDS)
CAPS_GRANTED = "policy:caps"  # the policy's side of every cap posting
_MONEY_KIND_SET = frozenset(KINDS) - frozenset(CAP_KINDS)  # feed_rows' own pass: every kind but a cap's


class JournalError(ValueError):
    """A journal entry that cannot be built as asked."""


@dataclass(frozen=True)
class Posting:
    account: str
    amount_fen: int

    def to_canonical(self) -> dict[str, Any]:
        return {"account": self.account, "amount": self.amount_fen}


@dataclass(frozen=True)
class JournalHead:
    """Where the chain ends: the last entry's seq and hash (0 and GENESIS_HASH when empty)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    kind: str
    application_id: str
    event_id: str
    postings: tuple[Posting, ...]
    prev_hash: str
    hash: str
    recorded_for: str  # the causing event's time (RFC 3339), never the wall clock

    def body(self) -> dict[str, Any]:
        """Every field except the hash: what the hash covers."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "application_id": self.application_id,
            "event_id": self.event_id,
            "postings": [p.to_canonical() for p in self.postings],
            "prev_hash": self.prev_hash,
            "recorded_for": self.recorded_for,
        }


# ---------------------------------------------------------------------------------------------
# Accounts
# ---------------------------------------------------------------------------------------------


def pool_account(key: PoolKey) -> str:
    if ":" in key.pool or ":" in key.beneficiary:
        raise JournalError(f"pool and beneficiary must not contain ':': {key}")
    year = "" if key.year is None else str(key.year)
    if key.subject is None:
        return f"pool:{key.pool}:{key.beneficiary}:{year}"
    return f"pool:{key.pool}:{key.beneficiary}:{year}:{key.subject}"


def parse_pool_account(account: str) -> PoolKey:
    parts = account.split(":", 4)
    if parts[0] != "pool" or len(parts) < 4:
        raise JournalError(f"not a pool account: {account!r}")
    year = int(parts[3]) if parts[3] else None
    subject = parts[4] if len(parts) == 5 else None
    return PoolKey(parts[1], parts[2], year, subject)


def award_account(application_id: str) -> str:
    return f"award:{application_id}"


def payable_account(beneficiary: str) -> str:
    return f"payable:{beneficiary}"


def held_account(beneficiary: str) -> str:
    return f"held:{beneficiary}"


def cap_account(key: PoolKey) -> str:
    """The account whose balance is the pool's cap: the pool account's name under ``cap:``."""
    return "cap:" + pool_account(key).removeprefix("pool:")


def pool_account_of_cap(account: str) -> str:
    return "pool:" + account.removeprefix("cap:")


def cap_open_postings(key: PoolKey, cap_fen: int) -> tuple[Posting, ...]:
    """A pool's cap as the journal keeps it (see the module docs)."""
    if not isinstance(cap_fen, int) or cap_fen < 0:
        raise JournalError("a cap is a non-negative integer fen")
    if cap_fen == 0:
        return (Posting(cap_account(key), 0),)
    return Posting(cap_account(key), cap_fen), Posting(CAPS_GRANTED, -cap_fen)


def cap_amend_postings(key: PoolKey, before_fen: int, after_fen: int) -> tuple[Posting, ...]:
    """A cap changed from `before_fen` to `after_fen`: the difference, like an opening."""
    if before_fen == after_fen or min(before_fen, after_fen) < 0:
        raise JournalError("an amendment changes a cap to another non-negative cap")
    delta = after_fen - before_fen
    return Posting(cap_account(key), delta), Posting(CAPS_GRANTED, -delta)


def award_postings(award: Award) -> tuple[Posting, ...]:
    """The postings of an award, top-up or hold entry (see the module docs)."""
    amount = award.amount_fen
    if amount <= 0:
        raise JournalError("an award entry moves a positive amount")
    for key, drawn in award.draws:
        if drawn != amount:
            raise JournalError(f"draw on {key} differs from the award")
    return change_postings(award.application_id, award.beneficiary, [key for key, _ in award.draws], amount,
                           held=award.held)


def change_postings(application_id: str, beneficiary: str, pools: Iterable[PoolKey], amount_fen: int, *,
                    held: bool = False) -> tuple[Posting, ...]:
    """An application's award moving by `amount_fen` on every one of its pools (lock order): drawn
    when positive, given back when negative (see the module docs); `held`: an award under review,
    whose counterpart is what is held for the beneficiary, not what is owed."""
    if amount_fen == 0:
        raise JournalError("a change moves a non-zero amount")
    account = award_account(application_id)
    postings: list[Posting] = []
    for key in sorted(pools, key=PoolKey.sort_key):
        postings += [Posting(pool_account(key), -amount_fen), Posting(account, amount_fen)]
    owed = held_account(beneficiary) if held else payable_account(beneficiary)
    postings += [Posting(account, -amount_fen), Posting(owed, amount_fen)]
    return tuple(postings)


def approval_postings(beneficiary: str, amount_fen: int) -> tuple[Posting, ...]:
    """A reviewer's approval of `amount_fen` of a hold: from held to owed (the pools stay drawn)."""
    if amount_fen <= 0:
        raise JournalError("an approval moves a positive amount")
    return (Posting(held_account(beneficiary), -amount_fen), Posting(payable_account(beneficiary), amount_fen))


def revocation_postings(award_entry_postings: Sequence[Posting]) -> tuple[Posting, ...]:
    """The compensating entry: the exact negation of the award's postings, same order."""
    return tuple(Posting(p.account, -p.amount_fen) for p in award_entry_postings)


# ---------------------------------------------------------------------------------------------
# Encoding, hashing, building
# ---------------------------------------------------------------------------------------------


def canonical_encoding(entry_without_hash: JournalEntry | Mapping[str, Any]) -> bytes:
    """Sorted-key compact JSON in UTF-8 (non-ASCII kept as is), amounts as integers fen.

    Takes an entry (its hash is ignored) or the mapping of JournalEntry.body().
    """
    if isinstance(entry_without_hash, JournalEntry):
        fast = _fast_canonical(entry_without_hash)
        if fast is not None:
            return fast
        body: Mapping[str, Any] = entry_without_hash.body()
    else:
        body = entry_without_hash
    if "hash" in body:
        raise JournalError("the canonical encoding excludes the hash")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _fast_canonical(entry: JournalEntry) -> bytes | None:
    """The same bytes as the json.dumps path, by orjson, for an entry of plain str and int fields.

    orjson with OPT_SORT_KEYS writes compact JSON, keeps non-ASCII as UTF-8 and escapes control
    characters exactly as json.dumps(ensure_ascii=False) does; for the fixed ASCII keys of a body
    the key order is the same. Anything else (a float or bool amount read back from a tampered row,
    an int beyond 64 bits, a lone surrogate) returns None: the json.dumps path decides, as before.
    """
    if type(entry.seq) is not int:
        return None
    for value in (entry.kind, entry.application_id, entry.event_id, entry.prev_hash, entry.recorded_for):
        if type(value) is not str:
            return None
    postings = []
    for p in entry.postings:
        if type(p.account) is not str or type(p.amount_fen) is not int:
            return None
        postings.append({"account": p.account, "amount": p.amount_fen})
    try:
        return orjson.dumps(
            {"seq": entry.seq, "kind": entry.kind, "application_id": entry.application_id,
             "event_id": entry.event_id, "postings": postings, "prev_hash": entry.prev_hash,
             "recorded_for": entry.recorded_for},
            option=orjson.OPT_SORT_KEYS,
        )
    except orjson.JSONEncodeError:
        return None


def stored_postings(stored: Any) -> Any:
    """The postings column as read (JSON text, or already decoded): what it holds, unjudged."""
    if not isinstance(stored, str):
        return stored
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError:  # what orjson refuses and json reads: verify judges it as it is
        return json.loads(stored)


def entry_of_row(seq: int, kind: str, application_id: str, event_id: str, postings: Any, prev_hash: str,
                 hash_: str, recorded_for: str) -> JournalEntry:
    """A journal row (postings as JSON text) as an entry, nothing judged: a posting that is not an
    object is dropped and its account read as text, whatever is wrong is verify's to find."""
    parsed = stored_postings(postings)
    parsed = parsed if isinstance(parsed, list) else []
    return JournalEntry(
        seq=seq, kind=kind, application_id=application_id, event_id=event_id,
        postings=tuple(
            Posting(str(p.get("account")), p.get("amount"))  # type: ignore[arg-type]  # as stored: verify judges
            for p in parsed
            if isinstance(p, dict)
        ),
        prev_hash=prev_hash, hash=hash_, recorded_for=recorded_for,
    )


def row_of_entry(entry: JournalEntry) -> tuple[Any, ...]:
    """The entry as a journal row is read (entry_of_row's inverse): postings as JSON text."""
    return (entry.seq, entry.kind, entry.application_id, entry.event_id,
            orjson.dumps([p.to_canonical() for p in entry.postings]).decode(), entry.prev_hash, entry.hash,
            entry.recorded_for)


def entry_hash(prev_hash: str, canonical: bytes) -> str:
    """sha256(prev_hash as ASCII hex ‖ canonical).hexdigest()."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def _check_postings(postings: Sequence[Posting], kind: str | None = None) -> str | None:
    if not postings:
        return "no postings"
    caps = kind in CAP_KINDS
    for p in postings:
        if not isinstance(p.amount_fen, int) or isinstance(p.amount_fen, bool):
            return f"posting to {p.account} is not an integer"
        if not isinstance(p.account, str):
            return "a posting's account is not a name"
        if p.amount_fen == 0 and not (caps and len(postings) == 1):  # a zero cap: the one posting of 0
            return f"posting to {p.account} is not a non-zero integer"
        if caps != (p.account.startswith("cap:") or p.account == CAPS_GRANTED):
            return (f"a {kind} entry posts to {p.account}" if caps
                    else f"only a cap entry posts to {p.account}")
    total = sum(p.amount_fen for p in postings)
    if total != 0:
        return f"postings sum to {total}, not 0"
    return None


def build_entry(
    *,
    seq: int,
    prev_hash: str,
    kind: str,
    application_id: str,
    event_id: str,
    postings: Iterable[Posting],
    recorded_for: str,
) -> JournalEntry:
    """A hashed entry. seq starts at 1 with prev_hash GENESIS_HASH."""
    postings = tuple(postings)
    if kind not in KINDS:
        raise JournalError(f"kind must be one of {KINDS}")
    if seq < 1:
        raise JournalError("seq starts at 1")
    if len(prev_hash) != 64:
        raise JournalError("prev_hash is 64 hex characters")
    if not recorded_for or not event_id or not application_id:
        raise JournalError("application_id, event_id and recorded_for are required")
    problem = _check_postings(postings, kind)
    if problem:
        raise JournalError(problem)
    unhashed = JournalEntry(seq, kind, application_id, event_id, postings, prev_hash, "", recorded_for)
    return JournalEntry(seq, kind, application_id, event_id, postings, prev_hash,
                        entry_hash(prev_hash, canonical_encoding(unhashed)), recorded_for)


def next_entry(
    head: JournalEntry | None, *, kind: str, application_id: str, event_id: str,
    postings: Iterable[Posting], recorded_for: str,
) -> JournalEntry:
    """The entry that follows `head` (None: the first entry of the journal)."""
    return build_entry(
        seq=1 if head is None else head.seq + 1,
        prev_hash=GENESIS_HASH if head is None else head.hash,
        kind=kind, application_id=application_id, event_id=event_id, postings=postings,
        recorded_for=recorded_for,
    )


# ---------------------------------------------------------------------------------------------
# Verifying and re-summing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries checked before the first problem (all of them when ok)
    head: str  # hash of the last good entry (GENESIS_HASH for an empty journal)
    first_bad_seq: int | None  # the first seq at which history is not intact
    problem: str | None


class JournalAudit:
    """Verify's pass over the journal, one entry at a time, in bounded memory: the chain's state
    (next seq, previous hash, entries checked) and one running total per pool (its cap and what is
    committed on it), never the entries themselves.

    It starts at the genesis, or at a verify checkpoint (`start`: the checkpoint's seq and hash,
    `caps` and `committed` its totals by pool account). `checkpoints` (seq → hash) are earlier
    checkpoints to hold the chain to as it passes them: one that no longer matches says history
    was rewritten after it was verified. The first problem stops the chain check (later entries
    cannot be trusted to link), while the totals keep summing every entry read, so that the pools
    an edit moved are still named.
    """

    def __init__(self, start: JournalHead = JournalHead(0, GENESIS_HASH), *,
                 caps: Mapping[str, int] | None = None, committed: Mapping[str, int] | None = None,
                 checkpoints: Mapping[int, str] | None = None) -> None:
        self.expected_seq = start.seq + 1
        self.head = start.hash
        self.entries = start.seq
        self.caps: dict[str, int] = dict(caps or {})  # pool account → cap
        self.committed: dict[str, int] = dict(committed or {})  # pool account → committed
        self.checkpoints = dict(checkpoints or {})
        self.first_bad_seq: int | None = None
        self.problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, seq: int, problem: str) -> None:
        """A problem found elsewhere (an entry missing before the start), unless one came first."""
        if self.problem is None:
            self.first_bad_seq, self.problem = seq, problem

    def feed_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Feed journal rows as read: (seq, kind, application_id, event_id, postings as JSON text,
        prev_hash, hash, recorded_for).

        The same verdict and totals as feed(entry_of_row(*row)) for every row, at a fraction of the
        cost: a row of the shape the writer writes (every posting exactly {"account": text,
        "amount": integer}, not a cap entry) that passes every check is checked and summed here
        without building an entry; any other row (a cap entry, anything odd, anything that fails
        a check) goes through feed(), which decides and words the problem. The canonical bytes
        here are orjson's, sorted keys, of the row's fields and its postings as parsed: for such a
        row, byte for byte canonical_encoding's (see _fast_canonical).
        """
        kinds, loads, dumps, sort_keys, sha256 = (
            _MONEY_KIND_SET, orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS, hashlib.sha256)
        committed, checkpoints = self.committed, self.checkpoints
        for row in rows:
            seq, kind, application_id, event_id, postings_text, prev_hash, hash_, recorded_for = row
            if self.problem is not None:
                self._sum_row(row)
                continue
            if type(seq) is not int or seq != self.expected_seq or prev_hash != self.head \
                    or type(kind) is not str or kind not in kinds \
                    or type(application_id) is not str or type(event_id) is not str \
                    or type(recorded_for) is not str or type(postings_text) is not str:
                self.feed(entry_of_row(*row))
                continue
            try:
                postings = loads(postings_text)
                canonical = dumps({"application_id": application_id, "event_id": event_id, "kind": kind,
                                   "postings": postings, "prev_hash": prev_hash, "recorded_for": recorded_for,
                                   "seq": seq}, option=sort_keys)
            except (orjson.JSONDecodeError, orjson.JSONEncodeError):
                self.feed(entry_of_row(*row))
                continue
            drawn: list[tuple[str, int]] = []
            total = 0
            if type(postings) is not list or not postings:
                self.feed(entry_of_row(*row))
                continue
            for p in postings:
                # exactly {"account", "amount"}; a money entry: no cap account, no zero amount
                if type(p) is not dict or len(p) != 2:
                    break
                account, amount = p.get("account"), p.get("amount")
                if type(account) is not str or type(amount) is not int or amount == 0:
                    break
                if account.startswith("pool:"):
                    drawn.append((account, amount))
                elif account.startswith("cap:") or account == CAPS_GRANTED:
                    break
                total += amount
            else:
                if total == 0 and sha256(prev_hash.encode("ascii") + canonical).hexdigest() == hash_ \
                        and checkpoints.get(seq, hash_) == hash_:
                    self.expected_seq, self.head, self.entries = seq + 1, hash_, self.entries + 1
                    for account, amount in drawn:
                        committed[account] = committed.get(account, 0) - amount
                    continue
            self.feed(entry_of_row(*row))

    def _sum_row(self, row: Sequence[Any]) -> None:
        """_sum(entry_of_row(*row)) without the entry, once the chain is broken (the totals still
        name the pools): what is not an object is dropped, an account that is not text names no
        pool or cap (as text it would start with none of their prefixes), an amount that is not an
        integer counts 0."""
        postings_text = row[4]
        try:
            postings = orjson.loads(postings_text) if type(postings_text) is str else None
        except orjson.JSONDecodeError:
            postings = None
        if type(postings) is not list:
            self._sum(entry_of_row(*row))
            return
        for p in postings:
            if type(p) is not dict:
                continue
            account, amount = p.get("account"), p.get("amount")
            if type(account) is not str:
                continue
            if type(amount) is not int:
                amount = 0
            if account.startswith("pool:"):
                self.committed[account] = self.committed.get(account, 0) - amount
            elif account.startswith("cap:"):
                pool = pool_account_of_cap(account)
                self.caps[pool] = self.caps.get(pool, 0) + amount

    def feed(self, entry: JournalEntry) -> None:
        if self.problem is None:
            self.problem = self._check(entry)
            if self.problem is None:
                self.expected_seq, self.head, self.entries = self.expected_seq + 1, entry.hash, self.entries + 1
            else:
                self.first_bad_seq = self.expected_seq
        self._sum(entry)

    def _check(self, entry: JournalEntry) -> str | None:
        if entry.seq != self.expected_seq:
            return f"expected seq {self.expected_seq}, found {entry.seq}"
        if entry.prev_hash != self.head:
            return "prev_hash does not link to the previous entry"
        if entry.kind not in KINDS:
            return f"unknown kind {entry.kind!r}"
        if entry_hash(entry.prev_hash, canonical_encoding(entry)) != entry.hash:
            return "hash does not match the entry"
        problem = _check_postings(entry.postings, entry.kind)
        if problem is not None:
            return problem
        if entry.kind in CAP_KINDS:
            problem = self._check_cap(entry)
            if problem is not None:
                return problem
        known = self.checkpoints.get(entry.seq)
        if known is not None and known != entry.hash:
            return f"entry {entry.seq} differs from the verify checkpoint taken at it (history rewritten since)"
        return None

    def _check_cap(self, entry: JournalEntry) -> str | None:
        accounts = {pool_account_of_cap(p.account) for p in entry.postings if p.account != CAPS_GRANTED}
        if accounts != {entry.application_id}:
            return f"a {entry.kind} entry names {entry.application_id}, posts to the cap of {sorted(accounts)}"
        opened = entry.application_id in self.caps
        if entry.kind == "cap_open" and opened:
            return f"the cap of {entry.application_id} is opened twice"
        if entry.kind == "cap_amend" and not opened:
            return f"the cap of {entry.application_id} is amended before it is opened"
        return None

    def _sum(self, entry: JournalEntry) -> None:
        for p in entry.postings:
            amount = p.amount_fen if isinstance(p.amount_fen, int) and not isinstance(p.amount_fen, bool) else 0
            account = p.account
            if not isinstance(account, str):
                continue
            if account.startswith("pool:"):
                self.committed[account] = self.committed.get(account, 0) - amount
            elif account.startswith("cap:"):
                pool = pool_account_of_cap(account)
                self.caps[pool] = self.caps.get(pool, 0) + amount

    def finish(self, expected_head: str | None) -> VerifyResult:
        """The verdict once every entry was fed; `expected_head` is the head recorded elsewhere (the
        service's stored head), which catches a truncated tail."""
        if self.problem is None and expected_head is not None and expected_head != self.head:
            self.problem, self.first_bad_seq = "head differs from the expected head", self.expected_seq
        return VerifyResult(self.problem is None, self.entries, self.head, self.first_bad_seq, self.problem)


def verify_chain(entries: Iterable[JournalEntry], expected_head: str | None = None) -> VerifyResult:
    """Re-check seq continuity (1, 2, ...), prev links, hashes and zero-sum postings, in order.

    A deleted entry is reported at the missing seq. Truncation of the tail is invisible to the chain
    alone: pass the head recorded elsewhere (the service's stored head) as `expected_head`.
    """
    audit = JournalAudit()
    for entry in entries:
        audit.feed(entry)
        if not audit.ok:
            break
    return audit.finish(expected_head)


def pool_caps_from_journal(entries: Iterable[JournalEntry]) -> dict[PoolKey, int]:
    """Each pool's cap as the journal's cap entries set it (pools with no cap entry left out)."""
    audit = JournalAudit()
    for entry in entries:
        audit._sum(entry)
    return {parse_pool_account(account): cap for account, cap in audit.caps.items()}


def account_balances(entries: Iterable[JournalEntry]) -> dict[str, int]:
    balances: dict[str, int] = {}
    for entry in entries:
        for p in entry.postings:
            balances[p.account] = balances.get(p.account, 0) + p.amount_fen
    return balances


def pool_totals_from_journal(entries: Iterable[JournalEntry]) -> dict[PoolKey, int]:
    """Committed fen per pool, re-summed from the journal (pools back at 0 are left out)."""
    totals: dict[PoolKey, int] = {}
    for account, balance in account_balances(entries).items():
        if account.startswith("pool:") and balance != 0:
            totals[parse_pool_account(account)] = -balance
    return totals


def award_totals_from_journal(entries: Iterable[JournalEntry]) -> dict[str, int]:
    """Live amount per application (awards and top-ups, net of revocations; revoked ones left out)."""
    totals: dict[str, int] = {}
    for entry in entries:
        for p in entry.postings:
            if p.account.startswith("payable:"):
                totals[entry.application_id] = totals.get(entry.application_id, 0) + p.amount_fen
    return {app: amount for app, amount in totals.items() if amount != 0}
