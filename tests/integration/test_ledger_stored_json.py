"""Units last in the ledger's stored JSON: an award's draws are written as `amount_fen`, and rows
written before the rename (`amount`) are still read alike by the awards list, revocation, and
replay's comparison."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from services.ledger.handlers import revoke_award
from services.ledger.replay.repository import read_state
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt, scalar

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url, "ledger")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _award(maker: async_sessionmaker[AsyncSession], settings: Settings) -> tuple[str, str]:
    ent = new_applicant()
    # two pools: a project and a year pool (the project's subject its own: a project pool is every hospital's)
    data = receipt("GT-CLIN", "1231" + ent[4:], f"P-{ent[4:]}", "300000.00")
    await process(ledger_loop(maker, settings), [assessed(data)])
    return data["application_id"], "1231" + ent[4:]


async def _old_spelling(maker: async_sessionmaker[AsyncSession], application_id: str) -> None:
    async with maker() as session, session.begin():
        await session.execute(text(
            "UPDATE awards SET draws = (SELECT jsonb_agg(jsonb_build_object('account', d->'account', "
            "'amount', d->'amount_fen') ORDER BY n) FROM jsonb_array_elements(draws) WITH ORDINALITY AS x(d, n)) "
            "WHERE application_id = :a"), {"a": application_id})


async def test_new_awards_store_amount_fen(maker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    app, _ = await _award(maker, settings)
    draws = await scalar(maker, "SELECT draws FROM awards WHERE application_id = :a", a=app)
    assert len(draws) == 2 and all(set(d) == {"account", "amount_fen"} and d["amount_fen"] == 300_000_00
                                   for d in draws)


async def test_an_award_stored_the_old_way_reads_alike(maker: async_sessionmaker[AsyncSession],
                                                       settings: Settings) -> None:
    app, hospital = await _award(maker, settings)
    async with maker() as session:
        before = await read_state(session)
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
        listed = (await client.get("/v1/awards", params={"beneficiary": hospital}, headers=AUD)).json()["items"]

        await _old_spelling(maker, app)
        assert "amount" in (await scalar(maker, "SELECT draws FROM awards WHERE application_id = :a", a=app))[0]
        async with maker() as session:
            assert await read_state(session) == before  # replay compares what the draws mean
        again = (await client.get("/v1/awards", params={"beneficiary": hospital}, headers=AUD)).json()["items"]
        assert again == listed and [d["amount"] for d in again[0]["draws"]] == ["300000.00", "300000.00"]

    async with maker() as session, session.begin():
        result = await revoke_award(SqlLedgerRepository(session), app, reason="r", revoked_by="operator",
                                    now=datetime.now(UTC))
    assert result.created and result.data["amount"] == "300000.00"
    committed = await scalar(maker, "SELECT sum(committed_fen) FROM pools WHERE beneficiary = :b", b=hospital)
    assert committed == 0
