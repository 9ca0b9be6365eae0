"""Ledger verify at 10⁶ journal entries: a full run (re-hash the chain, re-derive every pool's cap
and committed, hold every pool row to them) and a run from a verify checkpoint after 1% more
entries, each next to hashing the same bytes alone (sha256 of prev_hash ‖ canonical entry, in
memory: the floor under any verify).

The journal is built in a scratch schema of `database_url`: `pools` pools (their caps journaled
first, cap_open), then awards round-robin over them, each entry as the ledger's writer makes it
(built as rows directly, the first of each kind in every chunk compared with build_entry's),
bulk-loaded with COPY while the next chunk is built, the pool rows and the head written to match,
then vacuumed as autovacuum would. Verify's figures come with its CPU seconds and the load
average: on a shared machine the wall time is mostly the CPU it was given.

    DATABASE_URL=postgresql://... python -m tools.bench.verify_bench [n]

`run_verify_bench(database_url, n)` returns the figures (for `make bench`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import time
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.ledger.audit.domain import VERIFY_PAGE
from services.ledger.audit.handlers import run_verify
from services.ledger.domain import PoolKey
from services.ledger.journal.domain import (
    CAPS_GRANTED,
    GENESIS_HASH,
    JournalEntry,
    JournalHead,
    award_account,
    build_entry,
    canonical_encoding,
    cap_account,
    cap_open_postings,
    change_postings,
    payable_account,
    pool_account,
)
from services.ledger.repository import SqlLedgerRepository
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade

CHUNK = 50_000  # entries built, hashed and copied at a time (the builder's memory bound)
CAP_FEN = 10**15
AMOUNT_FEN = 1_000_00
RECORDED_FOR = "2024-06-01T00:00:00+00:00"
_ENTRY_COLUMNS = ("seq", "kind", "application_id", "event_id", "postings", "prev_hash", "hash", "recorded_for")
_SORTED = orjson.OPT_SORT_KEYS


class _Journal:
    """Builds the bench's journal a chunk at a time, keeping only the head and per-pool totals.

    The entries are the ledger's (cap_open by cap_open_postings, awards by change_postings, hashed
    as build_entry hashes), but built as rows directly: the postings and the canonical body as
    orjson writes them, in the writer's order. The first entry of each kind in every chunk is also
    built by build_entry and must come out the same, hash and all (so the shortcut cannot drift
    from the writer), and the full verify re-checks every hash anyway.
    """

    def __init__(self, pools: int) -> None:
        self.keys = [PoolKey("GT-EQUITY/beneficiary-year", f"9131BENCH{i:09d}", 2024, None) for i in range(pools)]
        self.accounts = [pool_account(k) for k in self.keys]
        self.payables = [payable_account(k.beneficiary) for k in self.keys]
        self.head = JournalHead(0, GENESIS_HASH)
        self.committed = [0] * pools
        self.hash_seconds = 0.0  # the baseline: sha256 over the same bytes, nothing else (CPU seconds)
        self.build_seconds = 0.0  # building and hashing the rows (the rest of the load is COPY)

    def _entry(self, seq: int) -> tuple[str, str, str, list[dict[str, Any]]]:
        """(kind, application_id, event_id, postings) of entry `seq`."""
        pools = len(self.keys)
        if seq <= pools:
            key = self.keys[seq - 1]
            return "cap_open", self.accounts[seq - 1], f"bench-{seq}", [
                {"account": cap_account(key), "amount": CAP_FEN}, {"account": CAPS_GRANTED, "amount": -CAP_FEN}]
        i = (seq - pools - 1) % pools
        app = f"app_bench_{seq:08d}"
        award = award_account(app)
        self.committed[i] += AMOUNT_FEN
        return "award", app, f"bench-{seq}", [
            {"account": self.accounts[i], "amount": -AMOUNT_FEN}, {"account": award, "amount": AMOUNT_FEN},
            {"account": award, "amount": -AMOUNT_FEN}, {"account": self.payables[i], "amount": AMOUNT_FEN}]

    def _by_the_writer(self, seq: int, kind: str, app: str, event_id: str, prev: str) -> JournalEntry:
        pools = len(self.keys)
        if kind == "cap_open":
            postings = cap_open_postings(self.keys[seq - 1], CAP_FEN)
        else:
            key = self.keys[(seq - pools - 1) % pools]
            postings = change_postings(app, key.beneficiary, [key], AMOUNT_FEN)
        return build_entry(seq=seq, prev_hash=prev, kind=kind, application_id=app, event_id=event_id,
                           postings=postings, recorded_for=RECORDED_FOR)

    def build(self, count: int) -> list[tuple[Any, ...]]:
        """The next `count` entries as journal_entries records (postings as JSON text)."""
        out: list[tuple[Any, ...]] = []
        bodies: list[bytes] = []
        prev = self.head.hash
        checked: set[str] = set()
        dumps, sha256 = orjson.dumps, hashlib.sha256
        for seq in range(self.head.seq + 1, self.head.seq + count + 1):
            kind, app, event_id, postings = self._entry(seq)
            body = dumps({"application_id": app, "event_id": event_id, "kind": kind, "postings": postings,
                          "prev_hash": prev, "recorded_for": RECORDED_FOR, "seq": seq}, option=_SORTED)
            digest = sha256(prev.encode("ascii") + body).hexdigest()
            if kind not in checked:
                checked.add(kind)
                writer = self._by_the_writer(seq, kind, app, event_id, prev)
                if writer.hash != digest or canonical_encoding(writer) != body:
                    raise AssertionError(f"the bench's entry {seq} is not the writer's: {writer}")
            out.append((seq, kind, app, event_id, dumps(postings).decode(), prev, digest, RECORDED_FOR))
            bodies.append(body)
            prev = digest
        self.head = JournalHead(self.head.seq + count, prev)
        started = time.thread_time()  # CPU time: the thread shares the GIL with the COPY
        for (_, _, _, _, _, prev_hash, _, _), body in zip(out, bodies, strict=True):
            sha256(prev_hash.encode("ascii") + body).hexdigest()
        self.hash_seconds += time.thread_time() - started
        return out


async def _copy(maker: async_sessionmaker[AsyncSession], table: str, columns: tuple[str, ...],
                records: list[tuple[Any, ...]]) -> None:
    async with maker() as session, session.begin():
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table, records=records, columns=list(columns))


async def _append(maker: async_sessionmaker[AsyncSession], journal: _Journal, count: int) -> None:
    """`count` more entries, a chunk at a time; the next chunk is built (in a thread) while the
    database takes the last one in, so the load costs about the COPY alone."""

    def build(size: int) -> list[tuple[Any, ...]]:
        started = time.perf_counter()
        chunk = journal.build(size)
        journal.build_seconds += time.perf_counter() - started
        return chunk

    sizes = [min(CHUNK, count - done) for done in range(0, count, CHUNK)]
    pending = asyncio.ensure_future(asyncio.to_thread(build, sizes[0])) if sizes else None
    try:
        for i in range(len(sizes)):
            assert pending is not None
            chunk = await pending
            pending = asyncio.ensure_future(asyncio.to_thread(build, sizes[i + 1])) if i + 1 < len(sizes) else None
            await _copy(maker, "journal_entries", _ENTRY_COLUMNS, chunk)
    finally:
        if pending is not None:  # a failed COPY: the thread still runs, let it end
            with contextlib.suppress(Exception):
                await pending


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


async def _vacuum(engine: AsyncEngine) -> None:
    """What autovacuum does to an append-only table soon after a bulk insert (PostgreSQL 13+
    vacuums on inserts): statistics, and the visibility map that lets verify's count of the
    entries before a checkpoint read the index alone."""
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text("VACUUM (ANALYZE) journal_entries"))


async def _verify(maker: async_sessionmaker[AsyncSession], *, incremental: bool) -> tuple[
        float, float, dict[str, Any]]:
    """(wall seconds, this process's CPU seconds, the report) of one verify."""
    started, cpu = time.perf_counter(), time.process_time()
    async with maker() as session, session.begin():
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        verification = await run_verify(SqlLedgerRepository(session), incremental=incremental)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not verification.report["ok"]:
        raise AssertionError(f"the bench's journal does not verify: {verification.report}")
    if verification.checkpoint is not None:
        async with maker() as session, session.begin():
            await SqlLedgerRepository(session).insert_checkpoint(verification.checkpoint)
    return elapsed, cpu, verification.report


async def run_verify_bench(database_url: str, n: int = 1_000_000, pools: int = 10_000,
                           more: float = 0.01) -> dict[str, Any]:
    """Build an `n`-entry journal over `pools` pools, verify it in full, add `more`·n entries and
    verify from the checkpoint the full run left; print and return the figures."""
    schema = f"ledger_verify_bench_{secrets.token_hex(3)}"
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)
    engine = make_engine(database_url, schema)
    maker = make_sessionmaker(engine)
    try:
        section = time.perf_counter()
        journal = _Journal(min(pools, n))
        started = time.perf_counter()
        await _append(maker, journal, n)
        await _write_state(maker, journal, first=True)
        await _vacuum(engine)
        load_seconds = time.perf_counter() - started
        full_hash_seconds = journal.hash_seconds

        full_seconds, full_cpu, _ = await _verify(maker, incremental=False)
        extra = max(1, int(n * more))
        journal.hash_seconds = 0.0
        await _append(maker, journal, extra)
        await _write_state(maker, journal, first=False)  # 1% more: not yet what autovacuum would visit
        incremental_seconds, incremental_cpu, incremental = await _verify(maker, incremental=True)
        if incremental.get("from_seq") != n or incremental["entries"] != n + extra:
            raise AssertionError(f"the run from the checkpoint did not start at it: {incremental}")
        section_seconds = time.perf_counter() - section
        load = os.getloadavg()[0]
        result = {
            "verify_n": n, "verify_pools": len(journal.keys), "verify_page": VERIFY_PAGE,
            "verify_load_s": round(load_seconds, 2), "verify_build_s": round(journal.build_seconds, 2),
            "verify_full_s": round(full_seconds, 2), "verify_full_cpu_s": round(full_cpu, 2),
            "verify_full_entries_per_s": round(n / full_seconds),
            "verify_hash_only_entries_per_s": round(n / full_hash_seconds),
            "verify_incremental_new": extra, "verify_incremental_s": round(incremental_seconds, 3),
            "verify_incremental_cpu_s": round(incremental_cpu, 3),
            "verify_incremental_hash_only_s": round(journal.hash_seconds, 4),
            "verify_section_s": round(section_seconds, 1), "verify_loadavg_1m": round(load, 2),
        }
        print(f"ledger verify, {n} journal entries over {len(journal.keys)} pools (built and copied in "
              f"{load_seconds:.1f}s, of which building {journal.build_seconds:.1f}s in a thread next to the "
              f"COPY), pages of {VERIFY_PAGE}, load average {load:.2f}:")
        print(f"  full:              {full_seconds:8.2f}s  {n / full_seconds:12,.0f} entries/s  (CPU {full_cpu:.2f}s;"
              f" hashing the same bytes alone: {n / full_hash_seconds:12,.0f} entries/s)")
        print(f"  from a checkpoint: {incremental_seconds:8.3f}s  for {extra} new entries (CPU {incremental_cpu:.3f}s;"
              f" hashing them alone: {journal.hash_seconds:.4f}s)")
        print(f"  the whole section: {section_seconds:.1f}s")
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
