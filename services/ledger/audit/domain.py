"""Verify's pure parts: its checkpoints, a pool row held against the journal, the report. No I/O.

The journal pass itself (chain and per-pool running totals) is services.ledger.journal.domain's
JournalAudit; here is what verify makes of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.ledger.domain import PoolKey, pool_key_wire
from services.ledger.journal.domain import (
    GENESIS_HASH,
    JournalAudit,
    JournalHead,
    VerifyResult,
    parse_pool_account,
)
from shared.kernel.money import format_fen

VERIFY_PAGE = 5_000  # journal entries (and pool rows) read per query: verify's memory bound


@dataclass(frozen=True)
class CheckpointRef:
    """A verify checkpoint without its totals: where a verify that found everything intact ended."""

    id: int
    seq: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """What a successful verify leaves for the next: its end, and per pool account [cap, committed]
    (cap None for a pool whose cap the journal does not have)."""

    seq: int
    hash: str
    totals: dict[str, list[int | None]]
    from_genesis: bool

    @staticmethod
    def of(audit: JournalAudit, result: VerifyResult, *, from_genesis: bool) -> Checkpoint:
        accounts = set(audit.caps) | {a for a, c in audit.committed.items() if c != 0}
        return Checkpoint(result.entries, result.head,
                          {a: [audit.caps.get(a), audit.committed.get(a, 0)] for a in sorted(accounts)}, from_genesis)


def split_totals(totals: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """A checkpoint's stored totals as JournalAudit's caps and committed."""
    caps: dict[str, int] = {}
    committed: dict[str, int] = {}
    for account, (cap, comm) in totals.items():
        if cap is not None:
            caps[account] = int(cap)
        committed[account] = int(comm)
    return caps, committed


GENESIS = CheckpointRef(0, 0, GENESIS_HASH)


def starting_point(checkpoints: Iterable[CheckpointRef], hashes: Mapping[int, str]) -> tuple[
        CheckpointRef, list[CheckpointRef]]:
    """The latest checkpoint whose hash is still the journal's at its seq (`hashes`: seq → the
    entry's hash now, absent when the entry is gone), or the genesis; and every checkpoint that no
    longer matches (history rewritten after it was verified)."""
    broken = [c for c in checkpoints if c.seq > 0 and hashes.get(c.seq) != c.hash]
    good = [c for c in checkpoints if c not in broken]
    start = max(good, key=lambda c: (c.seq, c.id), default=GENESIS)
    return start, broken


@dataclass(frozen=True)
class PoolRow:
    """A pool row as stored, with nothing checked (verify must see a row someone altered)."""

    account: str
    cap_fen: int
    committed_fen: int
    cap_journaled: bool


def pool_mismatch(account: str, row: PoolRow | None, cap: int | None, committed: int) -> dict[str, Any] | None:
    """The pool's line in the report when its row and the journal disagree, else None.

    A row whose cap the journal does not have, that nothing was drawn on and that does not claim a
    journaled cap, is a pool named by an assessment that was never decided (dead-lettered, or a
    copy of one decided): no cap was ever in force for it, and the first decision that uses it
    journals the cap the row has then.
    """
    table_committed = row.committed_fen if row is not None else 0
    table_cap = row.cap_fen if row is not None else None
    unused = cap is None and committed == 0 and table_committed == 0 and (row is None or not row.cap_journaled)
    if unused:
        return None
    fields = []
    if committed != table_committed:
        fields.append("committed")
    if cap != table_cap:
        fields.append("cap")
    if not fields:
        return None
    return {**pool_key_wire(parse_pool_account(account)), "journal": format_fen(committed),
            "table": format_fen(table_committed),
            "journal_cap": None if cap is None else format_fen(cap),
            "table_cap": None if table_cap is None else format_fen(table_cap), "differs": fields}


def sort_mismatches(mismatches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In lock order (beneficiary, pool, year, subject), as the report has always listed them."""

    def key(m: dict[str, Any]) -> tuple[Any, ...]:
        return PoolKey(m["pool"], m["beneficiary"], m["year"], m["subject"]).sort_key()

    return sorted(mismatches, key=key)


def report(result: VerifyResult, mismatches: list[dict[str, Any]], broken: list[CheckpointRef], *,
           start: JournalHead | None) -> dict[str, Any]:
    """The answer of /v1/audit/verify: {"ok", "entries", "head"}, and on failure the first bad
    entry (`first_bad_seq`, `problem`) and the mismatching `pools`; `from_seq` for an incremental
    run (the checkpoint it started from)."""
    ok = result.ok and not mismatches and not broken
    out: dict[str, Any] = {"ok": ok, "entries": result.entries, "head": result.head}
    if start is not None:
        out["from_seq"] = start.seq
    if not result.ok:
        out["first_bad_seq"] = result.first_bad_seq
        out["problem"] = result.problem
    elif broken:
        first = min(broken, key=lambda c: c.seq)
        out["first_bad_seq"] = first.seq
        out["problem"] = (f"the journal no longer ends as verify checkpoint {first.id} saw it at seq {first.seq} "
                          "(history rewritten since)")
    elif mismatches:
        differs = {f for m in mismatches for f in m["differs"]}
        out["problem"] = {frozenset({"committed"}): "pool committed totals differ from the journal",
                          frozenset({"cap"}): "pool caps differ from the journal"}.get(
            frozenset(differs), "pool caps and committed totals differ from the journal")
    if mismatches:
        out["pools"] = sort_mismatches(mismatches)
    return out

