"""Replay: events/s rebuilding the ledger from the event history, and equal to live, next to the
baseline of the same events read from the same history and discarded (parsed, nothing applied).

A live ledger is built first in scratch schemas (its own eligibility outbox and ledger), with the live
path (ConsumerLoop.process, batches of 500) over n assessments on many beneficiaries and programs,
with operator revocations interleaved; then `grantline-replay`'s run_replay rebuilds it from the
eligibility outbox and compares.

    DATABASE_URL=postgresql://... python -m tools.bench.replay_bench [n]
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.ledger.app import decide_subscription
from services.ledger.handlers import revoke_award
from services.ledger.replay.handlers import run_replay
from services.ledger.replay.repository import read_from_outbox
from services.ledger.repository import SqlLedgerRepository
from shared.contracts.envelope import Event, new_event, parse_event
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from shared.kernel.money import format_fen
from shared.messaging.consumer import ConsumerLoop
from shared.messaging.outbox import add_events

T0 = datetime(2024, 6, 1, tzinfo=UTC)
_POOLS = {  # program → (pool name, scope, cap fen)
    "GT-EQUITY": ("GT-EQUITY/beneficiary-year", "beneficiary_year", 10_000_000_00),
    "GT-CLIN": ("GT-CLIN/beneficiary-year", "beneficiary_year", 5_000_000_00),
}


class _Record:
    def __init__(self, value: bytes, offset: int, key: bytes) -> None:
        self.value, self.offset, self.key = value, offset, key
        self.topic, self.partition = ASSESSMENTS, 0


def _events(n: int) -> list[Event]:
    """n assessments over n/20 beneficiaries: caps reached, duplicates, ineligibles, two programs."""
    out = []
    for i in range(n):
        beneficiary = f"9131BENCH{i % max(1, n // 20):09d}"
        program = "GT-EQUITY" if i % 3 else "GT-CLIN"
        pool, scope, cap = _POOLS[program]
        subject = f"S-{i % 7}" if i % 11 == 0 else f"S-{i}"  # some overlap duplicates / top-ups
        eligible = i % 13 != 0
        data: dict[str, Any] = {
            "application_id": f"app_rb_{i:07d}", "partner_id": "ptn_bench", "program": program, "year": 2024,
            "applicant": {"id": beneficiary, "name": f"单位{i % 50}"}, "subject": subject, "eligible": eligible,
            "entitlement": format_fen((1 + i % 9) * 50_000_00) if eligible else "0.00",
            "reasons": [] if eligible else [{"code": "RULE_FAILED", "message": "x", "citation": "000"}],
            "rules": [], "catalog_version": "bench",
            "pools": [{"pool": pool, "scope": scope, "beneficiary": beneficiary, "year": 2024, "subject": None,
                       "cap": format_fen(cap), "citation": "000 §五"}],
            "overlap": {"applicant": beneficiary, "subject": subject, "milestone": "m"},
        }
        out.append(new_event("application.assessed", source="grantline.eligibility", subject=data["application_id"],
                             data=data, time=T0 + timedelta(milliseconds=i)))
    return out


async def _build_live(database_url: str, n: int, live: str, elig: str, batch: int = 500) -> int:
    await asyncio.to_thread(upgrade, database_url, "ledger", live)
    await asyncio.to_thread(upgrade, database_url, "eligibility", elig)
    live_engine, elig_engine = make_engine(database_url, live), make_engine(database_url, elig)
    revocations = 0
    try:
        ledger, eligibility = make_sessionmaker(live_engine), make_sessionmaker(elig_engine)
        loop = ConsumerLoop(service="ledger", subscription=decide_subscription(), maker=ledger,
                            bootstrap="unused:9092", batch_max=batch)
        events = _events(n)
        for i in range(0, n, batch):
            chunk = events[i:i + batch]
            async with eligibility() as session, session.begin():
                await add_events(session, [(e, e.data["applicant"]["id"]) for e in chunk])
            await loop.process([_Record(e.to_bytes(), i + j, b"k") for j, e in enumerate(chunk)])  # type: ignore[misc]
            async with ledger() as session, session.begin():  # an operator revokes a few between batches
                apps = (await session.execute(text(
                    "SELECT application_id FROM awards WHERE NOT revoked ORDER BY journal_seq DESC LIMIT 3"))).scalars()
                for app in list(apps):
                    await revoke_award(SqlLedgerRepository(session), app, reason="bench", revoked_by="operator", now=datetime.now(UTC))
                    revocations += 1
    finally:
        await live_engine.dispose()
        await elig_engine.dispose()
    return revocations


async def _baseline(database_url: str, elig: str) -> tuple[int, float]:
    """The same events read from the same history and discarded (parsed as the replay parses them)."""
    started = time.perf_counter()
    read = await read_from_outbox(database_url, elig, set())
    engine = make_engine(database_url, elig, pool_size=1)
    count = 0
    try:
        async with engine.connect() as conn:
            result = await conn.stream(text(
                "SELECT envelope::text FROM outbox WHERE type = 'application.assessed' ORDER BY seq"))
            async for partition in result.partitions(2000):
                for (envelope,) in partition:
                    parse_event(envelope.encode())
                    count += 1
    finally:
        await engine.dispose()
    assert count == read.total
    return count, time.perf_counter() - started


async def run_replay_bench(database_url: str, n: int = 20_000) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    live, elig, scratch = f"rb_ledger_{tag}", f"rb_elig_{tag}", f"rb_replay_{tag}"
    try:
        revocations = await _build_live(database_url, n, live, elig)
        base_count, base_s = await _baseline(database_url, elig)
        report = await run_replay(database_url, source="outbox", schema=scratch, live_schema=live,
                                  eligibility_schema=elig, progress_every=10**9, err=io.StringIO())
    finally:
        engine = make_engine(database_url, "public", pool_size=1)
        async with engine.begin() as conn:
            for schema in (live, elig, scratch):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
    result = {
        "n": n, "revocations": revocations, "operations": report.ops,
        "replay_events_per_s": round(report.events_per_s, 1),
        "replay_end_to_end_events_per_s": round(report.ops / report.total_seconds, 1),
        "baseline_events_per_s": round(base_count / base_s, 1),
        "ratio": round(report.events_per_s / (base_count / base_s), 3),
        "replay_equal": report.equal,
        "differences": len(report.differences) + len(report.problems),
    }
    print(f"replay, {n} assessments + {revocations} revocations ({report.ops} operations in the live order):")
    print(f"  replay (apply):         {result['replay_events_per_s']:12,.1f} events/s")
    print(f"  replay (read+apply+diff): {result['replay_end_to_end_events_per_s']:10,.1f} events/s")
    print(f"  baseline (read+discard): {result['baseline_events_per_s']:11,.1f} events/s")
    print(f"  ratio:                  {result['ratio']:12.3f}x")
    print(f"  equal:                  {report.equal}")
    if not report.equal:
        print(report.summary())
    return result


def main() -> None:
    url = os.environ.get("DATABASE_URL") or os.environ.get("GRANTLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (e.g. `source .grantline/env`)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    asyncio.run(run_replay_bench(url, n))


if __name__ == "__main__":
    main()
