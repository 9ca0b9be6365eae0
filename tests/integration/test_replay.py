"""`grantline-replay` as a real subprocess (the console script) after a mixed load: several programs,
top-ups, duplicates (overlap and re-driven copies), ineligibles, caps reached and operator revocations
interleaved with the assessments. It must rebuild an identical ledger from the broker and from the
eligibility outbox, and fail naming the pool after a direct database edit of a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.handlers import revoke_award
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.ledger import (
    again,
    assessed,
    ledger_loop,
    new_applicant,
    process,
    publish_assessments,
    receipt,
    run_replay,
)

pytestmark = pytest.mark.integration



@dataclass
class Live:
    ledger: async_sessionmaker[AsyncSession]
    revoked: list[str]
    awards: int


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
        await publish_assessments(settings, eligibility, events)
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
    code, out, err = await run_replay(settings, "--source", "outbox", "--progress-every", "5")
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
    code, out, err = await run_replay(settings, "--schema", "ledger_replay_kept", "--keep")
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
        code, out, err = await run_replay(settings, "--source", "outbox")
    finally:
        await _exec(live.ledger, "UPDATE pools SET committed_fen = committed_fen + 1 WHERE account = :a", a=account)
    assert code == 1, out + err
    assert "replay DIFFERENT" in out and f"pool {account}: committed_fen live" in out

    await _exec(live.ledger, "UPDATE pools SET cap_fen = cap_fen + 100 WHERE account = :a", a=account)
    try:
        code, out, err = await run_replay(settings, "--source", "outbox")
    finally:
        await _exec(live.ledger, "UPDATE pools SET cap_fen = cap_fen - 100 WHERE account = :a", a=account)
    assert code == 1, out + err
    assert f"pool {account}: cap_fen live" in out


async def test_an_unusable_scratch_schema_exits_2(live: Live, settings: Settings) -> None:
    code, _, err = await run_replay(settings, "--source", "outbox", "--schema", "ledger")
    assert code == 2 and "scratch schema" in err
