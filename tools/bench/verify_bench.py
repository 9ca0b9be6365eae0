"""Ledger verify at 10⁶ journal entries: a full run (re-hash the chain, re-derive every pool's cap
and committed, hold every pool row to them) and a run from a verify checkpoint after 1% more
entries, each next to hashing the same bytes alone (sha256 of prev_hash ‖ canonical entry, in
memory: the floor under any verify).

The journal is built in a scratch schema of `database_url`: `pools` pools (their caps journaled
first, cap_open), then awards round-robin over them, each entry hashed by the ledger's own
journal code and bulk-loaded with COPY, the pool rows and the head written to match.

    DATABASE_URL=postgresql://... python -m tools.bench.verify_bench [n]

`run_verify_bench(database_url, n)` returns the figures (for `make bench`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sys
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.audit.domain import VERIFY_PAGE
from services.ledger.audit.handlers import run_verify
from services.ledger.domain import PoolKey
from services.ledger.journal.domain import (
    GENESIS_HASH,
    JournalEntry,
    JournalHead,
    build_entry,
    canonical_encoding,
    cap_open_postings,
    change_postings,
    pool_account,
)
from services.ledger.repository import SqlLedgerRepository, json_text
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade

CHUNK = 50_000  # entries built, hashed and copied at a time (the builder's memory bound)
CAP_FEN = 10**15
AMOUNT_FEN = 1_000_00
_ENTRY_COLUMNS = ("seq", "kind", "application_id", "event_id", "postings", "prev_hash", "hash", "recorded_for")


class _Journal:
    """Builds the bench's journal a chunk at a time, keeping only the head and per-pool totals."""

    def __init__(self, pools: int) -> None:
        self.keys = [PoolKey("GT-EQUITY/beneficiary-year", f"9131BENCH{i:09d}", 2024, None) for i in range(pools)]
        self.head = JournalHead(0, GENESIS_HASH)
        self.committed = [0] * pools
        self.hash_seconds = 0.0  # the baseline: sha256 over the same bytes, nothing else

    def build(self, count: int) -> list[JournalEntry]:
        out: list[JournalEntry] = []
        for _ in range(count):
            seq = self.head.seq + 1
            if seq <= len(self.keys):
                key = self.keys[seq - 1]
                entry = build_entry(seq=seq, prev_hash=self.head.hash, kind="cap_open",
                                    application_id=pool_account(key), event_id=f"bench-{seq}",
                                    postings=cap_open_postings(key, CAP_FEN), recorded_for="2024-06-01T00:00:00+00:00")
            else:
                i = (seq - len(self.keys) - 1) % len(self.keys)
                key = self.keys[i]
                app = f"app_bench_{seq:08d}"
                entry = build_entry(seq=seq, prev_hash=self.head.hash, kind="award", application_id=app,
                                    event_id=f"bench-{seq}", postings=change_postings(app, key.beneficiary, [key],
                                                                                      AMOUNT_FEN),
                                    recorded_for="2024-06-01T00:00:00+00:00")
                self.committed[i] += AMOUNT_FEN
            out.append(entry)
            self.head = JournalHead(entry.seq, entry.hash)
        canonical = [(e.prev_hash.encode("ascii"), canonical_encoding(e)) for e in out]
        started = time.perf_counter()
        for prev, body in canonical:
            hashlib.sha256(prev + body).hexdigest()
        self.hash_seconds += time.perf_counter() - started
        return out


async def _copy(maker: async_sessionmaker[AsyncSession], table: str, columns: tuple[str, ...],
                records: list[tuple[Any, ...]]) -> None:
    async with maker() as session, session.begin():
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table, records=records, columns=list(columns))


async def _append(maker: async_sessionmaker[AsyncSession], journal: _Journal, count: int) -> None:
    while count > 0:
        chunk = journal.build(min(CHUNK, count))
        count -= len(chunk)
        await _copy(maker, "journal_entries", _ENTRY_COLUMNS, [
            (e.seq, e.kind, e.application_id, e.event_id, json_text([p.to_canonical() for p in e.postings]),
             e.prev_hash, e.hash, e.recorded_for) for e in chunk])


async def _write_state(maker: async_sessionmaker[AsyncSession], journal: _Journal, *, first: bool) -> None:
    """The pool rows and the head as the journal leaves them."""
    async with maker() as session, session.begin():
        if first:
            await session.execute(text(
                "INSERT INTO pools (account, pool, scope, beneficiary, year, cap_fen, committed_fen, cap_journaled) "
                "SELECT a, 'GT-EQUITY/beneficiary-year', 'beneficiary_year', b, 2024, :cap, c, true "
                "FROM unnest(CAST(:a AS text[]), CAST(:b AS text[]), CAST(:c AS bigint[])) AS u(a, b, c)"),
                {"a": [pool_account(k) for k in journal.keys], "b": [k.beneficiary for k in journal.keys],
                 "c": journal.committed, "cap": CAP_FEN})
        else:
            await session.execute(text(
                "UPDATE pools p SET committed_fen = u.c FROM unnest(CAST(:a AS text[]), CAST(:c AS bigint[])) "
                "AS u(a, c) WHERE p.account = u.a"),
                {"a": [pool_account(k) for k in journal.keys], "c": journal.committed})
        await session.execute(text("UPDATE journal_head SET seq = :s, hash = :h WHERE id = 1"),
                              {"s": journal.head.seq, "h": journal.head.hash})
        await session.execute(text("ANALYZE journal_entries"))


async def _verify(maker: async_sessionmaker[AsyncSession], *, incremental: bool) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with maker() as session, session.begin():
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        verification = await run_verify(SqlLedgerRepository(session), incremental=incremental)
    elapsed = time.perf_counter() - started
    if not verification.report["ok"]:
        raise AssertionError(f"the bench's journal does not verify: {verification.report}")
    if verification.checkpoint is not None:
        async with maker() as session, session.begin():
            await SqlLedgerRepository(session).insert_checkpoint(verification.checkpoint)
    return elapsed, verification.report


async def run_verify_bench(database_url: str, n: int = 1_000_000, pools: int = 10_000,
                           more: float = 0.01) -> dict[str, Any]:
    """Build an `n`-entry journal over `pools` pools, verify it in full, add `more`·n entries and
    verify from the checkpoint the full run left; print and return the figures."""
    schema = f"ledger_verify_bench_{secrets.token_hex(3)}"
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)
    engine = make_engine(database_url, schema)
    maker = make_sessionmaker(engine)
    try:
        journal = _Journal(min(pools, n))
        started = time.perf_counter()
        await _append(maker, journal, n)
        await _write_state(maker, journal, first=True)
        load_seconds = time.perf_counter() - started
        full_hash_seconds = journal.hash_seconds

        full_seconds, _ = await _verify(maker, incremental=False)
        extra = max(1, int(n * more))
        journal.hash_seconds = 0.0
        await _append(maker, journal, extra)
        await _write_state(maker, journal, first=False)
        incremental_seconds, incremental = await _verify(maker, incremental=True)
        if incremental.get("from_seq") != n or incremental["entries"] != n + extra:
            raise AssertionError(f"the run from the checkpoint did not start at it: {incremental}")
        result = {
            "verify_n": n, "verify_pools": len(journal.keys), "verify_page": VERIFY_PAGE,
            "verify_load_s": round(load_seconds, 2),
            "verify_full_s": round(full_seconds, 2), "verify_full_entries_per_s": round(n / full_seconds),
            "verify_hash_only_entries_per_s": round(n / full_hash_seconds),
            "verify_incremental_new": extra, "verify_incremental_s": round(incremental_seconds, 3),
            "verify_incremental_new_per_s": round(extra / incremental_seconds),
            "verify_incremental_hash_only_s": round(journal.hash_seconds, 4),
        }
        print(f"ledger verify, {n} journal entries over {len(journal.keys)} pools (built and copied in "
              f"{load_seconds:.1f}s), pages of {VERIFY_PAGE}:")
        print(f"  full:              {full_seconds:8.2f}s  {n / full_seconds:12,.0f} entries/s"
              f"   (hashing the same bytes alone: {n / full_hash_seconds:12,.0f} entries/s)")
        print(f"  from a checkpoint: {incremental_seconds:8.3f}s  for {extra} new entries "
              f"(hashing them alone: {journal.hash_seconds:.4f}s)")
        return result
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


def main() -> None:
    url = os.environ.get("DATABASE_URL") or os.environ.get("GRANTLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (e.g. `source .grantline/env`)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    asyncio.run(run_verify_bench(url, n))


if __name__ == "__main__":
    main()
