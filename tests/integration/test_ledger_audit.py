"""`GET /v1/audit/verify` catches tampering made directly in the database (as superuser):
a one-fen edit of a journal amount, an altered hash, a deleted entry, a pool's committed edited.
The journal refuses UPDATE and DELETE from the service itself."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt

pytestmark = pytest.mark.integration


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], httpx.AsyncClient]]:
    """A fresh ledger schema per test (tampering must not leak), five awards in it, the API on it."""
    schema = f"ledger_audit_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    loop = ledger_loop(maker, settings)
    ent = new_applicant()
    await process(loop, [assessed(receipt("GT-EQUITY", ent, f"R-{i}", "1500000.00")) for i in range(5)])
    # Only the routes are exercised: give them a context on the scratch schema, no lifespan.
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
            yield maker, client
    finally:
        await engine.dispose()


async def _exec(maker: async_sessionmaker[AsyncSession], *statements: str) -> None:
    async with maker() as session, session.begin():
        for sql in statements:
            await session.execute(text(sql))


def _untriggered(sql: str) -> tuple[str, str, str]:
    return ("ALTER TABLE journal_entries DISABLE TRIGGER journal_append_only", sql,
            "ALTER TABLE journal_entries ENABLE TRIGGER journal_append_only")


async def _verify(client: httpx.AsyncClient) -> dict:
    resp = await client.get("/v1/audit/verify", headers=AUD)
    assert resp.status_code == 200
    return resp.json()


async def test_intact_ledger_verifies(ledger: tuple) -> None:
    _, client = ledger
    out = await _verify(client)
    assert out["ok"] is True and out["entries"] == 6 and len(out["head"]) == 64  # the pool's cap, five awards


async def test_the_journal_refuses_update_and_delete(ledger: tuple) -> None:
    maker, _ = ledger
    with pytest.raises(Exception, match="append-only"):
        await _exec(maker, "UPDATE journal_entries SET kind = 'award' WHERE seq = 1")
    with pytest.raises(Exception, match="append-only"):
        await _exec(maker, "DELETE FROM journal_entries WHERE seq = 1")
    with pytest.raises(Exception, match="journal_postings_balance"):
        await _exec(maker, "INSERT INTO journal_entries (seq, kind, application_id, event_id, postings, prev_hash, "
                           "hash, recorded_for) VALUES (99, 'award', 'a', 'e', "
                           "'[{\"account\": \"x\", \"amount\": 1}]', repeat('0', 64), repeat('1', 64), 't')")
    with pytest.raises(Exception, match="pools_committed_within_cap"):
        await _exec(maker, "UPDATE pools SET committed_fen = cap_fen + 1")


async def test_a_one_fen_edit_of_a_journal_amount_is_caught(ledger: tuple) -> None:
    maker, client = ledger
    # Move one fen from the pool posting to the award posting of entry 3 (still sums to zero).
    await _exec(maker, *_untriggered(
        "UPDATE journal_entries SET postings = jsonb_set(jsonb_set(postings, '{0,amount}', "
        "to_jsonb((postings->0->>'amount')::bigint + 1)), '{1,amount}', "
        "to_jsonb((postings->1->>'amount')::bigint - 1)) WHERE seq = 3"))
    out = await _verify(client)
    assert out["ok"] is False and out["first_bad_seq"] == 3 and out["entries"] == 2
    assert "hash" in out["problem"]
    assert out["pools"][0]["pool"] == "GT-EQUITY/beneficiary-year"


async def test_an_altered_hash_is_caught(ledger: tuple) -> None:
    maker, client = ledger
    await _exec(maker, *_untriggered("UPDATE journal_entries SET hash = repeat('a', 64) WHERE seq = 4"))
    out = await _verify(client)
    assert out["ok"] is False and out["first_bad_seq"] == 4


async def test_a_deleted_entry_is_caught(ledger: tuple) -> None:
    maker, client = ledger
    await _exec(maker, *_untriggered("DELETE FROM journal_entries WHERE seq = 2"))
    out = await _verify(client)
    assert out["ok"] is False and out["first_bad_seq"] == 2
    assert out["pools"], "the pool no longer re-sums either"


async def test_a_deleted_last_entry_is_caught_by_the_stored_head(ledger: tuple) -> None:
    maker, client = ledger
    await _exec(maker, *_untriggered("DELETE FROM journal_entries WHERE seq = 5"))
    out = await _verify(client)
    assert out["ok"] is False and out["first_bad_seq"] == 5


async def test_a_direct_edit_of_a_pool_is_caught(ledger: tuple) -> None:
    maker, client = ledger
    await _exec(maker, "UPDATE pools SET committed_fen = committed_fen - 1")
    out = await _verify(client)
    assert out["ok"] is False and out["entries"] == 6  # the pool's cap, five awards
    assert out["problem"] == "pool committed totals differ from the journal"
    (pool,) = out["pools"]
    assert (pool["journal"], pool["table"]) == ("7500000.00", "7499999.99")
