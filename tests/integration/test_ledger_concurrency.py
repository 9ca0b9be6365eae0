"""Two ledger instances (separate engines) racing over one hot enterprise pool: the cap holds
to the fen, every application is decided once, and the journal verifies."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.ledger.handlers import verify_ledger
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.ledger import (
    again,
    assessed,
    ledger_loop,
    new_applicant,
    process,
    receipt,
)

pytestmark = pytest.mark.integration

N = 200
ENTITLEMENT_FEN = 123_456_78
CAP_FEN = 10_000_000_00


async def test_two_instances_fill_one_pool_exactly(settings: Settings) -> None:
    ent = new_applicant()
    receipts = [receipt("GT-EQUITY", ent, f"ROUND-{i:03d}", "123456.78") for i in range(N)]
    events = [assessed(r) for r in receipts]
    copies = [again(e) for e in events]  # the same assessments re-driven under new event ids
    engines = [make_engine(settings.database_url, "ledger") for _ in range(2)]
    makers = [make_sessionmaker(e) for e in engines]
    loops = [ledger_loop(m, settings) for m in makers]
    try:
        # Instance A takes the originals in batches of 40; instance B overlapping batches of 30,
        # half of them the originals (inbox dedupe across instances), half re-driven copies
        # (one decision per application), all at the same time.
        a_batches = [events[i:i + 40] for i in range(0, N, 40)]
        b_source = [events[i] if i % 2 else copies[i] for i in range(N)]
        b_batches = [b_source[i:i + 30] for i in range(15, N, 30)] + [b_source[:15]]

        async def run(loop_index: int, batches: list) -> None:
            for batch in batches:
                await process(loops[loop_index], batch)

        await asyncio.wait_for(asyncio.gather(run(0, a_batches), run(1, b_batches)), timeout=60)

        async with makers[0]() as session:
            committed, cap = (await session.execute(
                text("SELECT committed_fen, cap_fen FROM pools WHERE beneficiary = :b"), {"b": ent})).one()
            awarded = await session.scalar(
                text("SELECT sum(amount_fen) FROM awards WHERE beneficiary = :b"), {"b": ent})
            decisions = await session.scalar(
                text("SELECT count(*) FROM decisions WHERE beneficiary = :b"), {"b": ent})
            published = await session.scalar(
                text("SELECT count(*) FROM outbox WHERE type = 'award.decided' AND key = :b"), {"b": ent})
            partial = await session.scalar(
                text("SELECT count(*) FROM decisions WHERE beneficiary = :b AND status = 'partially_approved'"),
                {"b": ent})
        async with makers[1]() as session, session.begin():
            verify = await verify_ledger(SqlLedgerRepository(session))
        assert cap == CAP_FEN
        assert committed == CAP_FEN
        assert awarded == CAP_FEN
        assert decisions == N and published == N
        assert partial == 1  # 81 full awards, one partial, the rest rejected
        assert verify["ok"] is True, verify
    finally:
        for engine in engines:
            await engine.dispose()
