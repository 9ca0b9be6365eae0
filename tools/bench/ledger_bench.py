"""Ledger, one hot beneficiary: awards/s with caps enforced, batched vs one transaction per award.

Both runs use the same code path (ConsumerLoop.process → inbox → decide_awards), the same rows
(one beneficiary, one pool that the n awards fill exactly), each in its own scratch schema;
only the batch size differs (500 vs 1, the naive design).

    DATABASE_URL=postgresql://... python -m tools.bench.ledger_bench [n]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.ledger.app import decide_subscription
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from shared.kernel.money import format_fen
from shared.messaging.consumer import ConsumerLoop

AMOUNT_FEN = 1_000_00
T0 = datetime(2024, 6, 1, tzinfo=UTC)


class _Record:
    def __init__(self, value: bytes, offset: int, key: bytes) -> None:
        self.value, self.offset, self.key = value, offset, key
        self.topic, self.partition = ASSESSMENTS, 0


def _events(n: int, beneficiary: str) -> list[Event]:
    cap = format_fen(n * AMOUNT_FEN)
    pool = {"pool": "GT-EQUITY/beneficiary-year", "scope": "beneficiary_year", "beneficiary": beneficiary,
            "year": 2024, "subject": None, "cap": cap, "citation": "000 §五(六)"}
    out = []
    for i in range(n):
        app = f"app_bench_{i:06d}"
        data: dict[str, Any] = {
            "application_id": app, "partner_id": "ptn_bench", "program": "GT-EQUITY", "year": 2024,
            "applicant": {"id": beneficiary, "name": "bench"}, "subject": f"ROUND-{i}", "eligible": True,
            "entitlement": format_fen(AMOUNT_FEN), "reasons": [], "rules": [], "pools": [pool],
            "overlap": {"applicant": beneficiary, "subject": f"ROUND-{i}", "milestone": "financing"},
            "catalog_version": "bench",
        }
        out.append(new_event("application.assessed", source="bench", subject=app, data=data,
                             time=T0 + timedelta(seconds=i)))
    return out


async def _run_mode(database_url: str, n: int, batch_size: int) -> float:
    schema = f"ledger_bench_{batch_size}_{secrets.token_hex(3)}"
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)
    engine = make_engine(database_url, schema)
    try:
        maker = make_sessionmaker(engine)
        loop = ConsumerLoop(service="ledger", subscription=decide_subscription(), maker=maker,
                            bootstrap="unused:9092", batch_max=batch_size)
        beneficiary = "91310115MA1H7G0L0C"
        records = [_Record(e.to_bytes(), i, beneficiary.encode()) for i, e in enumerate(_events(n, beneficiary))]
        started = time.perf_counter()
        for i in range(0, n, batch_size):
            await loop.process(records[i:i + batch_size])  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        async with maker() as session:
            committed, cap = (await session.execute(text("SELECT committed_fen, cap_fen FROM pools"))).one()
            awards = await session.scalar(text("SELECT count(*) FROM awards"))
        if committed != cap or awards != n:
            raise AssertionError(f"batch {batch_size}: committed {committed} of cap {cap}, {awards} awards")
        return n / elapsed
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def run_ledger_bench(database_url: str, n: int = 2000, batch_size: int = 500) -> dict[str, Any]:
    batched = await _run_mode(database_url, n, batch_size)
    naive = await _run_mode(database_url, n, 1)
    result = {"n": n, "batch_size": batch_size, "batched_awards_per_s": round(batched, 1),
              "naive_awards_per_s": round(naive, 1), "ratio": round(batched / naive, 2)}
    print(f"ledger, one hot beneficiary, {n} awards (caps enforced, pool filled exactly):")
    print(f"  batched ({batch_size}/tx): {batched:10.1f} awards/s")
    print(f"  naive (1/tx):      {naive:10.1f} awards/s")
    print(f"  ratio:             {batched / naive:10.2f}x")
    return result


def main() -> None:
    url = os.environ.get("DATABASE_URL") or os.environ.get("GRANTLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (e.g. `source .grantline/env`)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    asyncio.run(run_ledger_bench(url, n))


if __name__ == "__main__":
    main()
