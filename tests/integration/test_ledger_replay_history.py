"""Replay's comparison over history from before reviews: a decision published then has no `review` in
its data (award.decided reads that as auto), and the replay, which writes `review: auto`, finds it
equal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.replay.repository import read_state
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt, scalar

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url, "ledger")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_decision_from_before_reviews_reads_as_auto(maker: async_sessionmaker[AsyncSession],
                                                             settings: Settings) -> None:
    ent = new_applicant()
    data = receipt("GT-CLIN", "1231" + ent[4:], f"P-{ent[4:]}", "300000.00")
    await process(ledger_loop(maker, settings), [assessed(data)])
    app = data["application_id"]
    assert await scalar(maker, "SELECT data->>'review' FROM decisions WHERE application_id = :a", a=app) == "auto"
    async with maker() as session:
        before = (await read_state(session))["decisions"][app]

    async with maker() as session, session.begin():
        await session.execute(text("UPDATE decisions SET data = data - 'review' WHERE application_id = :a"),
                              {"a": app})
    async with maker() as session:
        assert (await read_state(session))["decisions"][app] == before
