"""`GET /v1/audit/verify` re-derives every pool's cap and committed from the journal: a one-fen
edit of a cap, of committed, of a journal amount (an award's or a cap's), and a deleted entry, each
made as superuser SQL, are caught, naming the entry or the pool; an untouched ledger is intact.
The same from a verify checkpoint (`from=checkpoint`), with what such a run does not re-read;
verify reads the journal a page at a time; migration 0007 journals the caps of pools opened before
it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from services.ledger.audit.domain import PoolRow
from services.ledger.audit.handlers import run_verify
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import alembic_config, upgrade
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt

pytestmark = pytest.mark.integration

POOL = "GT-EQUITY/beneficiary-year"


@dataclass
class Ledger:
    maker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    loop: ConsumerLoop
    ents: tuple[str, str]

    def account(self, i: int) -> str:
        return f"pool:{POOL}:{self.ents[i]}:2024"

    async def verify(self, **params: str) -> dict[str, Any]:
        resp = await self.client.get("/v1/audit/verify", params=params, headers=AUD)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def award(self, i: int, round_: str, amount: str = "1000000.00") -> None:
        await process(self.loop, [assessed(receipt("GT-EQUITY", self.ents[i], round_, amount))])


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    """A fresh ledger schema per test (tampering must not leak): two beneficiaries' pools, five
    awards, in this journal: 1 cap(A) 2 award(A) 3 cap(B) 4 award(B) 5 award(A) 6 award(B) 7 award(A)."""
    schema = f"ledger_verify_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    loop = ledger_loop(maker, settings)
    a, b = new_applicant(), new_applicant()
    await process(loop, [assessed(receipt("GT-EQUITY", ent, f"R-{i}", "1500000.00"))
                         for i, ent in enumerate([a, b, a, b, a])])
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
            yield Ledger(maker, client, loop, (a, b))
    finally:
        await engine.dispose()


async def _exec(maker: async_sessionmaker[AsyncSession], *statements: str) -> None:
    async with maker() as session, session.begin():
        for sql in statements:
            await session.execute(text(sql))


async def _rows(maker: async_sessionmaker[AsyncSession], sql: str) -> list[Any]:
    async with maker() as session:
        return list((await session.execute(text(sql))).all())


def _untriggered(table: str, sql: str) -> tuple[str, str, str]:
    return (f"ALTER TABLE {table} DISABLE TRIGGER USER", sql, f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _one_fen_moved(seq: int) -> tuple[str, str, str]:
    """Entry `seq`'s first posting +1 fen, its second −1: still zero-sum, the hash kept."""
    return _untriggered("journal_entries", (
        "UPDATE journal_entries SET postings = jsonb_set(jsonb_set(postings, '{0,amount}', "
        "to_jsonb((postings->0->>'amount')::bigint + 1)), '{1,amount}', "
        f"to_jsonb((postings->1->>'amount')::bigint - 1)) WHERE seq = {seq}"))


# ---------------------------------------------------------------------------------------------
# A full run
# ---------------------------------------------------------------------------------------------


async def test_an_untouched_ledger_is_intact_and_its_caps_are_journaled(ledger: Ledger) -> None:
    out = await ledger.verify()
    heads = await _rows(ledger.maker, "SELECT hash FROM journal_head")
    assert out == {"ok": True, "entries": 7, "head": heads[0].hash}
    kinds = await _rows(ledger.maker, "SELECT seq, kind, application_id, postings FROM journal_entries "
                                      "WHERE kind = 'cap_open' ORDER BY seq")
    assert [(r.seq, r.application_id) for r in kinds] == [(1, ledger.account(0)), (3, ledger.account(1))]
    cap = f"cap:{POOL}:{ledger.ents[0]}:2024"
    assert kinds[0].postings == [{"account": cap, "amount": 10_000_000_00},
                                 {"account": "policy:caps", "amount": -10_000_000_00}]
    assert [r.cap_journaled for r in await _rows(ledger.maker, "SELECT cap_journaled FROM pools")] == [True, True]


async def test_a_one_fen_edit_of_a_cap_is_caught(ledger: Ledger) -> None:
    await _exec(ledger.maker, f"UPDATE pools SET cap_fen = cap_fen + 1 WHERE account = '{ledger.account(1)}'")
    out = await ledger.verify()
    assert out["ok"] is False and out["problem"] == "pool caps differ from the journal"
    assert "first_bad_seq" not in out and out["entries"] == 7
    assert out["pools"] == [{"pool": POOL, "beneficiary": ledger.ents[1], "year": 2024, "subject": None,
                             "journal": "3000000.00", "table": "3000000.00", "journal_cap": "10000000.00",
                             "table_cap": "10000000.01", "differs": ["cap"]}]


async def test_a_one_fen_edit_of_committed_is_caught(ledger: Ledger) -> None:
    await _exec(ledger.maker, f"UPDATE pools SET committed_fen = committed_fen + 1 WHERE account = '{ledger.account(0)}'")
    out = await ledger.verify()
    assert out["ok"] is False and out["problem"] == "pool committed totals differ from the journal"
    ((pool,)) = out["pools"]
    assert (pool["beneficiary"], pool["journal"], pool["table"], pool["differs"]) == (
        ledger.ents[0], "4500000.00", "4500000.01", ["committed"])


async def test_a_one_fen_edit_of_a_journal_amount_is_caught_at_its_entry(ledger: Ledger) -> None:
    await _exec(ledger.maker, *_one_fen_moved(5))  # award(A): pool −1 fen less, award account +1 less
    out = await ledger.verify()
    assert out["ok"] is False and out["first_bad_seq"] == 5 and out["entries"] == 4
    assert out["problem"] == "hash does not match the entry"
    assert [(p["beneficiary"], p["differs"]) for p in out["pools"]] == [(ledger.ents[0], ["committed"])]


async def test_a_one_fen_edit_of_a_journaled_cap_is_caught_at_its_entry(ledger: Ledger) -> None:
    # The cap and the policy's side both move by a fen: zero-sum still, the pool's cap re-derived 1 fen up.
    await _exec(ledger.maker, *_one_fen_moved(3))
    out = await ledger.verify()
    assert out["ok"] is False and out["first_bad_seq"] == 3 and out["problem"] == "hash does not match the entry"
    ((pool,)) = out["pools"]
    assert (pool["beneficiary"], pool["journal_cap"], pool["table_cap"]) == (
        ledger.ents[1], "10000000.01", "10000000.00")


async def test_a_deleted_entry_is_caught_at_the_gap(ledger: Ledger) -> None:
    await _exec(ledger.maker, *_untriggered("journal_entries", "DELETE FROM journal_entries WHERE seq = 4"))
    out = await ledger.verify()
    assert out["ok"] is False and out["first_bad_seq"] == 4 and out["problem"] == "expected seq 4, found 5"
    assert [p["beneficiary"] for p in out["pools"]] == [ledger.ents[1]]


async def test_a_deleted_last_entry_is_caught_by_the_head(ledger: Ledger) -> None:
    await _exec(ledger.maker, *_untriggered("journal_entries", "DELETE FROM journal_entries WHERE seq = 7"))
    out = await ledger.verify()
    assert out["ok"] is False and out["first_bad_seq"] == 7
    assert out["problem"] == "head differs from the expected head"


async def test_a_deleted_cap_entry_is_caught(ledger: Ledger) -> None:
    await _exec(ledger.maker, *_untriggered("journal_entries", "DELETE FROM journal_entries WHERE seq = 1"))
    out = await ledger.verify()
    assert out["ok"] is False and out["first_bad_seq"] == 1
    ((pool,)) = out["pools"]
    assert (pool["beneficiary"], pool["journal_cap"], pool["table_cap"]) == (ledger.ents[0], None, "10000000.00")


# ---------------------------------------------------------------------------------------------
# From a checkpoint
# ---------------------------------------------------------------------------------------------


async def _checkpoints(ledger: Ledger) -> list[Any]:
    return await _rows(ledger.maker, "SELECT id, seq, hash, totals, from_genesis FROM verify_checkpoints ORDER BY id")


async def test_an_intact_run_records_a_checkpoint_and_the_next_starts_there(ledger: Ledger) -> None:
    full = await ledger.verify()
    (cp,) = await _checkpoints(ledger)
    assert (cp.seq, cp.hash, cp.from_genesis) == (7, full["head"], True)
    assert cp.totals == {ledger.account(0): [10_000_000_00, 4_500_000_00],
                         ledger.account(1): [10_000_000_00, 3_000_000_00]}
    assert await ledger.verify() == full and len(await _checkpoints(ledger)) == 1  # nothing new: no new row

    await ledger.award(0, "R-late")  # one more award of A
    out = await ledger.verify(**{"from": "checkpoint"})
    assert (out["ok"], out["from_seq"], out["entries"]) == (True, 7, 8)
    assert out["head"] == (await ledger.verify())["head"]
    last = (await _checkpoints(ledger))[-1]
    assert (last.seq, last.from_genesis) == (8, False)
    assert last.totals[ledger.account(0)] == [10_000_000_00, 5_500_000_00]


async def test_a_checkpoint_run_catches_edits_of_caps_committed_and_entries_after_it(ledger: Ledger) -> None:
    await ledger.verify()
    await ledger.award(1, "R-late")  # entry 8
    await _exec(ledger.maker, f"UPDATE pools SET cap_fen = cap_fen + 1 WHERE account = '{ledger.account(0)}'")
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and out["from_seq"] == 7 and [p["differs"] for p in out["pools"]] == [["cap"]]

    await _exec(ledger.maker, f"UPDATE pools SET cap_fen = cap_fen - 1, committed_fen = committed_fen - 1 "
                              f"WHERE account = '{ledger.account(0)}'")
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and [p["differs"] for p in out["pools"]] == [["committed"]]
    await _exec(ledger.maker, f"UPDATE pools SET committed_fen = committed_fen + 1 WHERE account = '{ledger.account(0)}'")

    await _exec(ledger.maker, *_one_fen_moved(8))
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and out["first_bad_seq"] == 8


async def test_a_checkpoint_run_catches_a_deleted_entry_after_it_and_a_rewritten_history_before(
        ledger: Ledger) -> None:
    await ledger.verify()
    await ledger.award(0, "R-8")
    await ledger.award(0, "R-9")
    await _exec(ledger.maker, *_untriggered("journal_entries", "DELETE FROM journal_entries WHERE seq = 8"))
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and out["first_bad_seq"] == 8

    # The checkpoint's own entry rewritten (as a forger re-hashing the chain from there would): the
    # checkpoint no longer matches, so the run starts from the genesis and says so.
    await _exec(ledger.maker, *_untriggered("journal_entries",
                                            "UPDATE journal_entries SET hash = repeat('b', 64) WHERE seq = 7"))
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and out["from_seq"] == 0 and out["first_bad_seq"] == 7


async def test_what_a_checkpoint_run_does_not_re_read(ledger: Ledger) -> None:
    """An entry before the checkpoint edited in place, its stored hash and the pools left as they
    were: only a full run re-hashes it. A deletion before the checkpoint is still seen (the
    checkpoint run counts the entries up to it)."""
    await ledger.verify()
    await ledger.award(1, "R-late")
    await _exec(ledger.maker, *_one_fen_moved(5))
    assert (await ledger.verify(**{"from": "checkpoint"}))["ok"] is True
    full = await ledger.verify()
    assert full["ok"] is False and full["first_bad_seq"] == 5

    await _exec(ledger.maker, *_untriggered("journal_entries", "DELETE FROM journal_entries WHERE seq = 2"))
    out = await ledger.verify(**{"from": "checkpoint"})
    assert out["ok"] is False and out["first_bad_seq"] == 2


async def test_checkpoints_are_append_only(ledger: Ledger) -> None:
    await ledger.verify()
    with pytest.raises(Exception, match="append-only"):
        await _exec(ledger.maker, "UPDATE verify_checkpoints SET seq = 1")
    with pytest.raises(Exception, match="append-only"):
        await _exec(ledger.maker, "DELETE FROM verify_checkpoints")


# ---------------------------------------------------------------------------------------------
# Bounded memory: pages
# ---------------------------------------------------------------------------------------------


class Counting(SqlLedgerRepository):
    """Records the size of every page verify asked for and got."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.journal_pages: list[int] = []
        self.pool_pages: list[int] = []

    async def journal_rows(self, after: int, limit: int) -> Sequence[Sequence[Any]]:
        page = await super().journal_rows(after, limit)
        self.journal_pages.append(len(page))
        return page

    async def pool_rows_page(self, after: str | None, limit: int) -> list[PoolRow]:
        page = await super().pool_rows_page(after, limit)
        self.pool_pages.append(len(page))
        return page


async def test_verify_reads_the_journal_and_the_pools_a_page_at_a_time(ledger: Ledger) -> None:
    whole = await ledger.verify()
    async with ledger.maker() as session:
        repo = Counting(session)
        paged = await run_verify(repo, page_size=2)
    assert paged.report == whole
    assert repo.journal_pages == [2, 2, 2, 1] and repo.pool_pages == [2, 0]
    await _exec(ledger.maker, f"UPDATE pools SET cap_fen = cap_fen + 1 WHERE account = '{ledger.account(1)}'")
    async with ledger.maker() as session:
        assert (await run_verify(Counting(session), page_size=2)).report == await ledger.verify()


# ---------------------------------------------------------------------------------------------
# Upgraded ledgers, pools no decision used
# ---------------------------------------------------------------------------------------------


async def test_migration_0007_journals_the_caps_of_pools_opened_before_it(settings: Settings) -> None:
    schema = f"ledger_up_{secrets.token_hex(3)}"
    command.upgrade(alembic_config(settings.database_url, "ledger", schema), "0006")
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    ent = new_applicant()
    try:
        await _exec(maker, "INSERT INTO pools (account, pool, scope, beneficiary, year, subject, cap_fen, committed_fen) "
                           f"VALUES ('pool:{POOL}:{ent}:2024', '{POOL}', 'beneficiary_year', '{ent}', 2024, NULL, "
                           "100000, 0), ('pool:X/subject:B::S-1', 'X/subject', 'subject', 'B', NULL, 'S-1', 0, 0)")
        upgrade(settings.database_url, "ledger", schema=schema)
        rows = await _rows(maker, "SELECT seq, kind, application_id, event_id, postings FROM journal_entries ORDER BY seq")
        assert [(r.seq, r.kind, r.application_id, r.event_id) for r in rows] == [
            (1, "cap_open", f"pool:{POOL}:{ent}:2024", "migration:0007"),
            (2, "cap_open", "pool:X/subject:B::S-1", "migration:0007"),
        ]
        assert rows[1].postings == [{"account": "cap:X/subject:B::S-1", "amount": 0}]  # a zero cap still named
        async with maker() as session:
            out = (await run_verify(SqlLedgerRepository(session))).report
        assert out["ok"] is True and out["entries"] == 2, out
        # A decision on the pool draws on it without opening its cap again.
        await process(ledger_loop(maker, settings), [assessed(receipt(
            "GT-EQUITY", ent, "R-1", "500.00", pools=[{"pool": POOL, "scope": "beneficiary_year", "beneficiary": ent,
                                                    "year": 2024, "subject": None, "cap": "1000.00",
                                                    "citation": "002"}]))])
        kinds = [r.kind for r in await _rows(maker, "SELECT kind FROM journal_entries ORDER BY seq")]
        assert kinds == ["cap_open", "cap_open", "award"]
        async with maker() as session:
            assert (await run_verify(SqlLedgerRepository(session))).report["ok"] is True
    finally:
        await engine.dispose()


async def test_a_pool_only_an_ineligible_application_named_has_no_cap_entry_and_verifies(ledger: Ledger) -> None:
    other = new_applicant()
    await process(ledger.loop, [assessed(receipt("GT-EQUITY", other, "R-X", "0.00", eligible=False))])
    rows = await _rows(ledger.maker, f"SELECT cap_journaled FROM pools WHERE beneficiary = '{other}'")
    assert [r.cap_journaled for r in rows] == [False]
    assert (await ledger.verify())["ok"] is True
    # Claimed journaled when the journal has no cap for it: caught.
    await _exec(ledger.maker, f"UPDATE pools SET cap_journaled = true WHERE beneficiary = '{other}'")
    out = await ledger.verify()
    assert out["ok"] is False and [p["beneficiary"] for p in out["pools"]] == [other]
