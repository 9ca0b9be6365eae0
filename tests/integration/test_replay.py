"""`grantline-replay` as a real subprocess (the console script) after a mixed load: several programs,
top-ups, duplicates (overlap and re-driven copies), ineligibles, caps reached and operator revocations
interleaved with the assessments. It must rebuild an identical ledger from the broker and from the
eligibility outbox, and fail naming the pool after a direct database edit of a pool."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.handlers import revoke_award
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.outbox import add_events
from tests.support.ledger import (
    again,
    assessed,
    ledger_loop,
    new_applicant,
    process,
    receipt,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Live:
    ledger: async_sessionmaker[AsyncSession]
    revoked: list[str]
    awards: int


async def _publish(settings: Settings, eligibility: async_sessionmaker[AsyncSession], events: list[Event]) -> None:
    """As eligibility would: into its outbox (its event history) and onto the broker."""
    async with eligibility() as session, session.begin():
        await add_events(session, [(e, e.data["applicant"]["id"]) for e in events])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for e in events:
            await producer.send(settings.topic_namespace + ASSESSMENTS, e.to_bytes(),
                                key=e.data["applicant"]["id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _revoke(maker: async_sessionmaker[AsyncSession], application_id: str, reason: str) -> None:
    async with maker() as session, session.begin():
        await revoke_award(SqlLedgerRepository(session), application_id, reason=reason, revoked_by="operator",
                           now=datetime.now(UTC))


@pytest.fixture(scope="module")
async def live(settings: Settings) -> AsyncIterator[Live]:
    ledger_engine = make_engine(settings.database_url, "ledger")
    elig_engine = make_engine(settings.database_url, "eligibility")
    ledger, eligibility = make_sessionmaker(ledger_engine), make_sessionmaker(elig_engine)
    loop = ledger_loop(ledger, settings)
    ent, hospital, maker_co = new_applicant(), "1231" + new_applicant()[4:], new_applicant()
    revoked: list[str] = []

    async def step(receipts: list[dict], *, extra: list[Event] = ()) -> list[Event]:  # type: ignore[assignment]
        events = [assessed(r) for r in receipts] + list(extra)
        await _publish(settings, eligibility, events)
        await process(loop, events)
        return events

    # 1. equity rounds up to the cap, an ineligible, clinical projects, a product award.
    equity = [receipt("GT-EQUITY", ent, f"ROUND-{c}", "4000000.00") for c in "ABC"]
    clin = [receipt("GT-CLIN", hospital, f"P-{i}", "500000.00") for i in range(4)]
    gt = receipt("GT-PRODUCT", maker_co, "PRODUCT-X", "8000000.00")
    inel = receipt("GT-EQUITY", new_applicant(), "ROUND-Z", "0.00", eligible=False)
    first = await step([*equity, *clin, gt, inel])
    # 2. an operator revokes one equity round: room comes back for the next ones.
    await _revoke(ledger, equity[0]["application_id"], "资料不实 <b>forged</b>")
    revoked.append(equity[0]["application_id"])
    # 3. a top-up across programs, a lower duplicate, a re-driven copy, another equity round.
    ct = receipt("CT-PRODUCT", maker_co, "PRODUCT-X", "12000000.00")
    lower = receipt("CT-PRODUCT", maker_co, "PRODUCT-X", "9000000.00")
    equity_d = receipt("GT-EQUITY", ent, "ROUND-D", "5000000.00")
    await step([ct, lower, equity_d], extra=[again(first[1])])
    # 4. revoke a clinical project and the base of the product chain, then more decisions.
    await _revoke(ledger, clin[1]["application_id"], "duplicate funding")
    await _revoke(ledger, gt["application_id"], "withdrawn")
    revoked += [clin[1]["application_id"], gt["application_id"]]
    more_clin = [receipt("GT-CLIN", hospital, f"P-{i}", "2000000.00") for i in range(4, 8)]
    again_product = receipt("GT-PRODUCT", maker_co, "PRODUCT-X", "15000000.00")
    await step([*more_clin, again_product, receipt("GT-EQUITY", ent, "ROUND-E", "3000000.00", year=2025)])
    async with ledger() as session:
        awards = int(await session.scalar(text("SELECT count(*) FROM awards")) or 0)
    try:
        yield Live(ledger, revoked, awards)
    finally:
        await ledger_engine.dispose()
        await elig_engine.dispose()


async def _replay(settings: Settings, *args: str) -> tuple[int, str, str]:
    script = Path(sys.executable).parent / "grantline-replay"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "services.ledger.replay.api"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    env.update({"DATABASE_URL": settings.database_url, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "GRANTLINE_TOPIC_NAMESPACE": settings.topic_namespace, "PYTHONPATH": str(ROOT)})
    proc = await asyncio.create_subprocess_exec(*cmd, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _exec(maker: async_sessionmaker[AsyncSession], sql: str, **params: object) -> None:
    async with maker() as session, session.begin():
        await session.execute(text(sql), params)


async def test_the_load_is_mixed(live: Live) -> None:
    async with live.ledger() as session:
        statuses = set((await session.execute(text("SELECT DISTINCT status FROM decisions"))).scalars())
        top_ups = await session.scalar(text("SELECT count(*) FROM awards WHERE top_up_of IS NOT NULL"))
        revocations = await session.scalar(text("SELECT count(*) FROM revocations"))
    assert statuses >= {"approved", "partially_approved", "rejected", "ineligible"}
    assert top_ups and top_ups >= 1 and revocations == 3 and live.awards >= 10


async def test_replay_from_the_eligibility_outbox_is_equal(live: Live, settings: Settings) -> None:
    code, out, err = await _replay(settings, "--source", "outbox", "--progress-every", "5")
    assert code == 0, out + err
    assert "replay EQUAL" in out and "3 revocations" in out
    assert "events (" in err, "progress lines go to stderr"
    async with live.ledger() as session:
        leftover = await session.scalar(text(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'ledger_replay_%'"))
    assert leftover == 0, "the scratch schema is dropped without --keep"


async def test_replay_from_the_broker_is_equal_and_keeps_the_schema_when_asked(
    live: Live, settings: Settings
) -> None:
    code, out, err = await _replay(settings, "--schema", "ledger_replay_kept", "--keep")
    assert code == 0, out + err
    assert "replay EQUAL" in out and "source=broker" in out
    async with live.ledger() as session:
        live_head = (await session.execute(text("SELECT seq, hash FROM journal_head"))).one()
        kept_head = (await session.execute(text("SELECT seq, hash FROM ledger_replay_kept.journal_head"))).one()
    assert tuple(kept_head) == tuple(live_head)
    await _exec(live.ledger, "DROP SCHEMA ledger_replay_kept CASCADE")


async def test_a_direct_edit_of_a_pools_committed_or_cap_is_named(live: Live, settings: Settings) -> None:
    async with live.ledger() as session:
        account = await session.scalar(text(
            "SELECT account FROM pools WHERE committed_fen > 0 AND pool = 'GT-CLIN/beneficiary-year'"))
    assert account
    await _exec(live.ledger, "UPDATE pools SET committed_fen = committed_fen - 1 WHERE account = :a", a=account)
    try:
        code, out, err = await _replay(settings, "--source", "outbox")
    finally:
        await _exec(live.ledger, "UPDATE pools SET committed_fen = committed_fen + 1 WHERE account = :a", a=account)
    assert code == 1, out + err
    assert "replay DIFFERENT" in out and f"pool {account}: committed_fen live" in out

    await _exec(live.ledger, "UPDATE pools SET cap_fen = cap_fen + 100 WHERE account = :a", a=account)
    try:
        code, out, err = await _replay(settings, "--source", "outbox")
    finally:
        await _exec(live.ledger, "UPDATE pools SET cap_fen = cap_fen - 100 WHERE account = :a", a=account)
    assert code == 1, out + err
    assert f"pool {account}: cap_fen live" in out


async def test_an_unusable_scratch_schema_exits_2(live: Live, settings: Settings) -> None:
    code, _, err = await _replay(settings, "--source", "outbox", "--schema", "ledger")
    assert code == 2 and "scratch schema" in err
