"""Payments at 20,000: orders batched, approved and exported (the pain.001) per second, next to
serialising the same pain.001 alone (pyiso20022/xsdata, no database); and a camt.054 statement's
entries matched per second (checked, then applied 500 a transaction), next to parsing the same
XML alone (xsdata into its message classes, no check, no database).

The orders are seeded in a scratch schema of `database_url` (decisions, awards, payees and ready
orders written straight with SQL: finalisation is not what is measured), then driven through the
ledger's own handlers (create_batch, approve_batch, send_batch, import_bank_document) as its
routes call them. The statement is the bank simulator's answer to that very pain.001, with 5% of
its entries returns. The scratch schema is dropped at the end.

    DATABASE_URL=postgresql://... python -m tools.bench.payments_bench [n]

`await run_payments_bench(database_url, n)` (async) returns the figures, keys `payments_…`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pyiso20022.camt.camt_054_001_08 as camt054
from sqlalchemy import text
from xsdata.formats.dataclass.parsers import XmlParser

from services.ledger.payments.documents import CONTEXT, pain001_document
from services.ledger.payments.domain import Payer
from services.ledger.payments.handlers import approve_batch, create_batch, import_bank_document, send_batch
from services.ledger.payments.repository import SqlPaymentRepository
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tools.bank_simulator import camt054_for, read_pain001

AMOUNT_FEN = 1_234_56
PAYER = ("上海市财政局（测试）", "31001500000050000001", "105290061012")
_OFFICER = {"id": "stf_bench_creator", "name": "bench creator"}
_SECOND = {"id": "stf_bench_approver", "name": "bench approver"}


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


async def _seed(maker: Any, n: int, program: str) -> None:
    """n decided, live, auto-approved awards, each with a payee and a ready payment order."""
    async with maker() as session, session.begin():
        await session.execute(text(
            "INSERT INTO decisions (application_id, assessed_event_id, decided_event_id, program, beneficiary, year, "
            "status, entitlement_fen, awarded_fen, correlation_id, recorded_for, data) "
            "SELECT 'app_bench_' || i, gen_random_uuid(), gen_random_uuid(), :p, 'BEN' || i, 2024, 'granted', :a, :a, "
            "'bench', '2024-06-01T00:00:00+00:00', jsonb_build_object('partner_id', 'ptn_bench') "
            "FROM generate_series(1, :n) AS i"), {"n": n, "p": program, "a": AMOUNT_FEN})
        await session.execute(text(
            "INSERT INTO awards (application_id, program, beneficiary, year, subject, overlap_applicant, "
            "overlap_subject, overlap_milestone, amount_fen, draws, journal_seq) "
            "SELECT 'app_bench_' || i, :p, 'BEN' || i, 2024, 'S' || i, 'BEN' || i, 'S' || i, '', :a, '[]', "
            "1000000000 + i FROM generate_series(1, :n) AS i"), {"n": n, "p": program, "a": AMOUNT_FEN})
        await session.execute(text(
            "INSERT INTO payees (application_id, applicant_id, partner_id, account_name, account_number, bank_code, "
            "updated_at, event_id) SELECT 'app_bench_' || i, 'BEN' || i, 'ptn_bench', '上海某某生物科技有限公司' || i, "
            "'3105016139360' || lpad(i::text, 7, '0'), '105290061012', now(), 'seed' || i "
            "FROM generate_series(1, :n) AS i"), {"n": n})
        await session.execute(text(
            "INSERT INTO payment_orders (id, application_id, partner_id, applicant_id, program, year, amount_fen, "
            "status, finalized_event_id, updated_at) SELECT 'pay_bench' || lpad(i::text, 8, '0'), 'app_bench_' || i, "
            "'ptn_bench', 'BEN' || i, :p, 2024, :a, 'ready', 'fin' || i, '2024-06-01T00:00:00+00:00' "
            "FROM generate_series(1, :n) AS i"), {"n": n, "p": program, "a": AMOUNT_FEN})


async def run_payments_bench(database_url: str, n: int = 20_000) -> dict[str, Any]:
    """Async: the payments figures at n orders and n statement entries (see the module doc)."""
    schema = f"bench_payments_{secrets.token_hex(4)}"
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)
    engine = make_engine(database_url, schema)
    maker = make_sessionmaker(engine)
    payer = Payer(*PAYER)
    out: dict[str, Any] = {"payments_n": n}
    try:
        t = time.perf_counter()
        await _seed(maker, n, "GT-BENCH")
        out["payments_seed_s"] = round(time.perf_counter() - t, 2)

        now = datetime.now(UTC)
        t = time.perf_counter()
        async with maker() as session, session.begin():
            batch = await create_batch(SqlPaymentRepository(session), program="GT-BENCH", year=2024, limit=n,
                                       by=_OFFICER, now=now)
        async with maker() as session, session.begin():
            await approve_batch(SqlPaymentRepository(session), batch.id, by=_SECOND, now=now)
        async with maker() as session, session.begin():
            document = await send_batch(SqlPaymentRepository(session), batch.id, payer=payer, now=now)
        export_s = time.perf_counter() - t
        assert batch.count == n, (batch.count, n)
        out["payments_export_s"] = round(export_s, 2)
        out["payments_orders_exported_per_s"] = _rate(n, export_s)
        out["payments_pain001_bytes"] = len(document)

        async with maker() as session:
            items = await SqlPaymentRepository(session).batch_items(batch.id)
        t = time.perf_counter()
        alone = pain001_document(batch.id, items, payer, now)
        serialise_s = time.perf_counter() - t
        assert alone == document
        out["payments_serialise_alone_s"] = round(serialise_s, 2)
        out["payments_serialise_alone_orders_per_s"] = _rate(n, serialise_s)

        initiation = read_pain001(document)
        returned = {tr.end_to_end_id for tr in initiation.transfers[: n // 20]}
        statement = camt054_for(initiation, returned=returned)
        out["payments_camt054_bytes"] = len(statement)

        t = time.perf_counter()
        parsed = XmlParser(context=CONTEXT).from_bytes(statement, camt054.Document)
        parse_s = time.perf_counter() - t
        assert len(parsed.bk_to_cstmr_dbt_cdt_ntfctn.ntfctn[0].ntry) == n
        del parsed
        out["payments_parse_alone_s"] = round(parse_s, 2)
        out["payments_parse_alone_entries_per_s"] = _rate(n, parse_s)

        t = time.perf_counter()
        result = await import_bank_document(maker, statement, statements=True, by=_OFFICER)
        import_s = time.perf_counter() - t
        expected = {"settled": n - len(returned), "returned": len(returned)} if returned else {"settled": n}
        assert result.outcomes == expected, result.outcomes
        out["payments_import_s"] = round(import_s, 2)
        out["payments_entries_matched_per_s"] = _rate(n, import_s)
        out["payments_outcomes"] = result.outcomes
        out["payments_load_average"] = round(os.getloadavg()[0], 2)
    finally:
        with contextlib.suppress(Exception):
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
    return out


def main(argv: list[str]) -> int:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL is required", file=sys.stderr)
        return 2
    n = int(argv[0]) if argv else 20_000
    print(orjson.dumps(asyncio.run(run_payments_bench(database_url, n))).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
