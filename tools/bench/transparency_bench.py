"""Notify's transparency log at 10⁶ leaves: appends/s and proofs/s, each next to hashing the same
bytes alone.

A scratch notify schema is filled in bulk (COPY) with n leaves and the complete subtrees the
domain computes for them; then, at that size, through the service's own code (the handlers over
SqlTransparencyRepository, real transactions):

- appends: one entry per transaction (as the finaliser appends one) and batches of 100 (as the
  consumer appends a batch), leaves/s, next to SHA-256 of the same entry bytes alone;
- the domain alone, in memory: leaves/s through `appended_nodes` (leaf and node hashing);
- inclusion and consistency proofs at size ~n for random indices / older sizes, each in its
  own read-only snapshot, proofs/s, with their size (hashes and bytes), next to a client
  verifying them (the hashing a proof costs).

    DATABASE_URL=postgresql://... python -m tools.bench.transparency_bench [n]
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import secrets
import sys
import time
import uuid
from typing import Any

from sqlalchemy import text

from services.notify.transparency import domain, handlers
from services.notify.transparency.repository import SqlTransparencyRepository
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from shared.db.uow import read_snapshot

N = 1_000_000
PROOFS = 2000
SINGLE_APPENDS = 500
BATCHES, BATCH = 20, 100


def _entry(i: int) -> domain.Entry:
    """An entry of the size the service logs (~330 bytes of canonical JSON)."""
    public = {"id": f"ann_{i:032x}", "applicant_name": "上海某某生物科技有限公司", "program": "GT-EQUITY",
              "year": 2024, "subject": f"ROUND-2024-{i:07d}", "amount": "4000000.00",
              "published_at": "2024-05-01T08:00:00.123456+00:00", "notice_ends_at": "2024-05-08T09:00:00+00:00"}
    return domain.announcement_entry("published", uuid.UUID(int=i + 1), public)


def _bulk_entries(n: int) -> list[bytes]:
    """n entries shaped exactly as `_entry` makes them, formatted from a template (building each
    through the domain would take half a minute at 10⁶)."""
    template = _entry(0).entry
    for part, marker in ((f'"{uuid.UUID(int=1)}"', b'"%(ev)s"'), (f'"ann_{0:032x}"', b'"ann_%(id)s"'),
                         (f'"ROUND-2024-{0:07d}"', b'"ROUND-2024-%(sub)s"')):
        assert template.count(part.encode()) == 1
        template = template.replace(part.encode(), marker)
    return [template % {b"id": b"%032x" % i, b"sub": b"%07d" % i, b"ev": str(uuid.UUID(int=i + 1)).encode()}
            for i in range(n)]


async def _fill(maker: Any, schema: str, n: int) -> float:
    """n leaves and their complete subtrees by COPY; returns the seconds it took."""
    started = time.perf_counter()
    raw_entries = _bulk_entries(n)
    assert raw_entries[:3] == [_entry(i).entry for i in range(3)]
    hashes = [domain.leaf_hash(e) for e in raw_entries]
    nodes = domain.appended_nodes(0, [], hashes)
    built_s = time.perf_counter() - started
    async with maker() as session, session.begin():
        raw = await (await session.connection()).get_raw_connection()
        apg = raw.driver_connection
        await apg.copy_records_to_table(
            "transparency_leaves", schema_name=schema,
            columns=["index", "entry", "leaf_hash", "announcement_id", "kind", "event_id"],
            records=((i, e, h, f"ann_{i:032x}", "published", uuid.UUID(int=i + 1))
                     for i, (e, h) in enumerate(zip(raw_entries, hashes, strict=True))),
        )
        await apg.copy_records_to_table(
            "transparency_nodes", schema_name=schema, columns=["level", "index", "hash"],
            records=((m.level, m.index, m.hash) for m in nodes),
        )
    async with maker() as session, session.begin():
        await session.execute(text("ANALYZE transparency_leaves"))
        await session.execute(text("ANALYZE transparency_nodes"))
    print(f"  (filled: {built_s:.1f}s building entries and nodes, {time.perf_counter() - started - built_s:.1f}s COPY)",
          file=sys.stderr)
    return time.perf_counter() - started


async def run_transparency_bench(database_url: str, n: int = N) -> dict[str, Any]:
    schema = f"notify_tlog_bench_{secrets.token_hex(3)}"
    await asyncio.to_thread(upgrade, database_url, "notify", schema)
    engine = make_engine(database_url, schema)
    rng = random.Random(9162)
    try:
        maker = make_sessionmaker(engine)
        fill_s = await _fill(maker, schema, n)

        fresh = [_entry(n + i) for i in range(SINGLE_APPENDS + BATCHES * BATCH)]
        started = time.perf_counter()
        for e in fresh:
            hashlib.sha256(b"\x00" + e.entry).digest()
        hash_per_s = len(fresh) / (time.perf_counter() - started)

        memory_n = min(n, 200_000)
        memory_entries = _bulk_entries(memory_n)
        started = time.perf_counter()
        domain.appended_nodes(0, [], [domain.leaf_hash(e) for e in memory_entries])
        domain_per_s = memory_n / (time.perf_counter() - started)
        del memory_entries

        started = time.perf_counter()
        for e in fresh[:SINGLE_APPENDS]:
            async with maker() as session, session.begin():
                await handlers.append_entries(SqlTransparencyRepository(session), [e])
        single_per_s = SINGLE_APPENDS / (time.perf_counter() - started)

        started = time.perf_counter()
        rest = fresh[SINGLE_APPENDS:]
        for b in range(BATCHES):
            async with maker() as session, session.begin():
                await handlers.append_entries(SqlTransparencyRepository(session), rest[b * BATCH:(b + 1) * BATCH])
        batch_per_s = BATCHES * BATCH / (time.perf_counter() - started)

        async with read_snapshot(maker) as session:
            repo = SqlTransparencyRepository(session)
            size = await repo.size()
            root = domain.root(size, await repo.nodes(domain.peaks(size)))
        if size != n + len(fresh):
            raise AssertionError(f"the log has {size} leaves, expected {n + len(fresh)}")

        inclusion: list[tuple[int, list[str]]] = []
        started = time.perf_counter()
        for _ in range(PROOFS):
            index = rng.randrange(size)
            async with read_snapshot(maker) as session:
                proof = await handlers.inclusion_proof(SqlTransparencyRepository(session), index, size)
            inclusion.append((index, proof["hashes"]))
        inclusion_per_s = PROOFS / (time.perf_counter() - started)

        consistency: list[tuple[int, list[str]]] = []
        started = time.perf_counter()
        for _ in range(PROOFS):
            first = rng.randrange(1, size)
            async with read_snapshot(maker) as session:
                proof = await handlers.consistency_proof(SqlTransparencyRepository(session), first, size)
            consistency.append((first, proof["hashes"]))
        consistency_per_s = PROOFS / (time.perf_counter() - started)

        # The client's side: what checking a proof costs (its hashing), and that each one holds.
        all_entries = {i: _entry(i).entry for i, _ in inclusion if i < n}
        fresh_by_index = {n + i: e.entry for i, e in enumerate(fresh)}
        started = time.perf_counter()
        for index, hashes in inclusion:
            entry = all_entries.get(index) or fresh_by_index[index]
            if not domain.verify_inclusion(index, size, domain.leaf_hash(entry),
                                           [base64.b64decode(h) for h in hashes], root):
                raise AssertionError(f"inclusion proof for {index} at {size} does not verify")
        verify_per_s = PROOFS / (time.perf_counter() - started)
        inclusion_hashes = sum(len(h) for _, h in inclusion) / PROOFS
        consistency_hashes = sum(len(h) for _, h in consistency) / PROOFS
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()

    result: dict[str, Any] = {
        "tlog_leaves": size,
        "tlog_fill_s": round(fill_s, 1),
        "tlog_append_per_s": round(single_per_s, 1),
        "tlog_append_batched_per_s": round(batch_per_s, 1),
        "tlog_domain_append_per_s": round(domain_per_s, 1),
        "tlog_hash_baseline_per_s": round(hash_per_s, 1),
        "tlog_inclusion_proofs_per_s": round(inclusion_per_s, 1),
        "tlog_consistency_proofs_per_s": round(consistency_per_s, 1),
        "tlog_proof_verify_per_s": round(verify_per_s, 1),
        "tlog_inclusion_proof_hashes": round(inclusion_hashes, 1),
        "tlog_consistency_proof_hashes": round(consistency_hashes, 1),
        "tlog_inclusion_proof_bytes": round(inclusion_hashes * domain.HASH_SIZE),
    }
    print(f"transparency log at {size:,} leaves (filled by COPY in {fill_s:.1f}s):")
    print(f"  append, 1 entry/tx:        {single_per_s:12.1f} leaves/s")
    print(f"  append, {BATCH} entries/tx:    {batch_per_s:12.1f} leaves/s")
    print(f"  domain alone (in memory):  {domain_per_s:12.1f} leaves/s")
    print(f"  baseline: SHA-256 of the same entry bytes alone: {hash_per_s:12.1f} /s")
    print(f"  inclusion proofs:          {inclusion_per_s:12.1f} /s ({inclusion_hashes:.1f} hashes)")
    print(f"  consistency proofs:        {consistency_per_s:12.1f} /s ({consistency_hashes:.1f} hashes)")
    print(f"  baseline: verifying a proof (client hashing): {verify_per_s:12.1f} /s")
    return result


def main() -> None:
    url = os.environ.get("DATABASE_URL") or os.environ.get("GRANTLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (e.g. `. .grantline/env`)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    asyncio.run(run_transparency_bench(url, n))


if __name__ == "__main__":
    main()
