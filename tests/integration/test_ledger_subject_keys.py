"""The subject-key migration (ledger 0004) on rows written before subjects were keyed: every pool
and award gets its key; two pools, or two live overlap chains, that fold to one key are not merged
but reported (subject_clashes, the auditor's list, a count in the log), and the migration does not
fail on them; afterwards a keyed application finds the pool and the chain that kept the key."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import alembic_config
from shared.kernel.subjects import subject_key
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.ledger import assessed, decided, ledger_loop, new_applicant, process, receipt, scalar

pytestmark = pytest.mark.integration

ENT = new_applicant()
CAP = 30_000_000_00
POOL = "GT-PRODUCT/subject"


def _account(subject: str) -> str:
    return f"pool:{POOL}:{ENT}::{subject}"


# pools as written before 0004: two spellings of one product, and one other product
OLD_POOLS = [("PRODUCT-X", 8_000_000_00), ("product x", 5_000_000_00), ("ＰＲＯＤＵＣＴ-Ｙ", 1_000_000_00)]
# awards as written before 0004: (application, overlap subject, amount, journal seq, revoked, top-up of)
OLD_AWARDS = [
    ("app_old_1", "PRODUCT-X", 8_000_000_00, 1, False, None),
    ("app_old_2", "product x", 5_000_000_00, 2, False, None),  # a second live chain of one key: a clash
    ("app_old_3", "Product-X", 3_000_000_00, 3, True, None),  # revoked: history, no clash
    ("app_old_4", "ＰＲＯＤＵＣＴ-Ｙ", 1_000_000_00, 4, False, None),
]


async def _write_old_rows(maker: async_sessionmaker[AsyncSession]) -> None:
    async with maker() as session, session.begin():
        for subject, committed in OLD_POOLS:
            await session.execute(text(
                "INSERT INTO pools (account, pool, scope, beneficiary, year, subject, cap_fen, committed_fen, citation) "
                "VALUES (:a, :p, 'subject', :b, NULL, :s, :cap, :c, '000 §五(四)')"),
                {"a": _account(subject), "p": POOL, "b": ENT, "s": subject, "cap": CAP, "c": committed})
        for app, subject, amount, seq, revoked, top_up_of in OLD_AWARDS:
            data = {"application_id": app, "partner_id": "ptn_old", "program": "GT-PRODUCT", "year": 2024,
                    "applicant": {"id": ENT, "name": "老数据"}, "subject": subject, "status": "approved",
                    "entitlement": "0.00", "awarded": "0.00", "limited_by": None, "reasons": [],
                    "top_up_of": top_up_of, "draws": [], "catalog_version": None}
            await session.execute(text(
                "INSERT INTO decisions (application_id, assessed_event_id, decided_event_id, program, beneficiary, "
                "year, status, entitlement_fen, awarded_fen, correlation_id, recorded_for, data) VALUES (:a, :e1, "
                ":e2, 'GT-PRODUCT', :b, 2024, 'approved', :amt, :amt, :a, '2024-06-01T00:00:00+00:00', "
                "CAST(:d AS jsonb))"),
                {"a": app, "e1": uuid.uuid4(), "e2": uuid.uuid4(), "b": ENT, "amt": amount,
                 "d": orjson.dumps(data).decode()})
            draws = [{"account": _account(subject if subject != "Product-X" else "PRODUCT-X"), "amount_fen": amount}]
            await session.execute(text(
                "INSERT INTO awards (application_id, program, beneficiary, year, subject, overlap_applicant, "
                "overlap_subject, overlap_milestone, amount_fen, draws, top_up_of, journal_seq, revoked) VALUES "
                "(:a, 'GT-PRODUCT', :b, 2024, :s, :b, :s, 'marketing_authorization', :amt, CAST(:dr AS jsonb), "
                ":t, :seq, :r)"),
                {"a": app, "b": ENT, "s": subject, "amt": amount, "dr": orjson.dumps(draws).decode(), "t": top_up_of,
                 "seq": seq, "r": revoked})
        # (the journal itself is not this test's: only its head moves past the awards' entries)
        await session.execute(text("UPDATE journal_head SET seq = :s, hash = :h"),
                              {"s": len(OLD_AWARDS), "h": "f" * 64})


@pytest.fixture(scope="module")
async def migrated(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    schema = f"ledger_keys_{uuid.uuid4().hex[:8]}"
    cfg = alembic_config(db_url, "ledger", schema)
    command.upgrade(cfg, "0003")
    engine = make_engine(db_url, schema)
    maker = make_sessionmaker(engine)
    await _write_old_rows(maker)
    command.upgrade(cfg, "head")
    yield maker
    await engine.dispose()


async def _rows(maker: async_sessionmaker[AsyncSession], sql: str) -> list[Any]:
    async with maker() as session:
        return list((await session.execute(text(sql))).all())


async def test_the_migration_counts_the_clashes_in_the_log(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    schema = f"ledger_keys_{uuid.uuid4().hex[:8]}"
    cfg = alembic_config(db_url, "ledger", schema)
    command.upgrade(cfg, "0003")
    engine = make_engine(db_url, schema)
    try:
        await _write_old_rows(make_sessionmaker(engine))
    finally:
        await engine.dispose()
    with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
        command.upgrade(cfg, "head")
    assert [r.getMessage() for r in caplog.records if "subject clashes" in r.getMessage()] == [
        "ledger 0004: 2 subject clashes found (1 among pools, 1 among overlap chains): kept apart, listed in "
        "subject_clashes"]


async def test_decisions_from_before_review_modes_were_decided_at_once(
    migrated: async_sessionmaker[AsyncSession]
) -> None:
    # 0006: their data says review "auto", as a replay of their receipts (which carry no mode) writes it.
    assert set(await _rows(migrated, "SELECT data->>'review', data ? 'held' FROM decisions")) == {("auto", False)}
    assert set(await _rows(migrated, "SELECT review FROM awards")) == {(None,)}


async def test_each_pool_gets_its_key_but_one_per_key(migrated: async_sessionmaker[AsyncSession]) -> None:
    rows = dict(await _rows(migrated, "SELECT subject, subject_key FROM pools"))
    assert rows == {"PRODUCT-X": subject_key("PRODUCT-X"), "product x": None,  # the fuller one keeps the key
                    "ＰＲＯＤＵＣＴ-Ｙ": subject_key("PRODUCT-Y")}


async def test_each_award_gets_its_key_but_one_live_chain_per_key(migrated: async_sessionmaker[AsyncSession]) -> None:
    rows = dict(await _rows(migrated, "SELECT application_id, overlap_key FROM awards"))
    assert rows == {"app_old_1": subject_key("PRODUCT-X"), "app_old_2": None, "app_old_3": subject_key("PRODUCT-X"),
                    "app_old_4": subject_key("PRODUCT-Y")}
    chains = await _rows(migrated, "SELECT application_id, overlap_key, pool_accounts FROM decisions "
                                   "WHERE overlap_key IS NOT NULL ORDER BY application_id")
    assert [r[0] for r in chains] == ["app_old_1", "app_old_3", "app_old_4"]
    assert chains[0][2] == [_account("PRODUCT-X")]


async def test_the_clashes_are_listed_for_the_auditor(migrated: async_sessionmaker[AsyncSession],
                                                      settings: Settings) -> None:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=migrated)) as client:
        body = (await client.get("/v1/audit/subject-clashes", headers=AUD)).json()
        assert (await client.get("/v1/audit/subject-clashes", headers=OP)).status_code == 200
        assert (await client.get("/v1/audit/subject-clashes")).status_code == 401
        first = (await client.get("/v1/audit/subject-clashes", params={"limit": 1}, headers=AUD)).json()
        rest = (await client.get("/v1/audit/subject-clashes", params={"cursor": first["next_cursor"]},
                                 headers=AUD)).json()
    pool, chain = body["items"]
    assert body["next_cursor"] is None and first["items"] + rest["items"] == body["items"]
    assert (pool["kind"], pool["subject_key"], pool["kept"]) == ("pool", subject_key("PRODUCT-X"),
                                                                 _account("PRODUCT-X"))
    assert pool["scope"] == {"pool": POOL, "beneficiary": ENT, "year": None}
    assert [(m["subject"], m["committed_fen"]) for m in pool["members"]] == [("PRODUCT-X", 8_000_000_00),
                                                                             ("product x", 5_000_000_00)]
    assert (chain["kind"], chain["kept"]) == ("overlap_chain", "PRODUCT-X")
    assert chain["scope"] == {"applicant": ENT, "milestone": "marketing_authorization"}
    assert chain["members"] == [
        {"overlap_subject": "PRODUCT-X", "applications": ["app_old_1"], "amount_fen": 8_000_000_00},
        {"overlap_subject": "product x", "applications": ["app_old_2"], "amount_fen": 5_000_000_00}]


async def test_a_keyed_application_finds_the_pool_and_the_chain_that_kept_the_key(
    migrated: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    lower = receipt("GT-PRODUCT", ENT, "Product X", "6000000.00")
    higher = receipt("GT-PRODUCT", ENT, "PRODUCT·X", "30000000.00")
    await process(ledger_loop(migrated, settings), [assessed(lower), assessed(higher)])
    out = await decided(migrated, [lower["application_id"], higher["application_id"]])
    assert [(d["status"], d["awarded"], [r["code"] for r in d["reasons"]]) for d in out] == [
        ("rejected", "0.00", ["DUPLICATE"]),
        # due 30M − 8M live; the product's pool (its 8M row) has 22M left
        ("approved", "22000000.00", ["TOP_UP"]),
    ]
    assert out[1]["top_up_of"] == "app_old_1"
    assert {d["subject"] for d in out[1]["draws"] if d["pool"] == POOL} == {"PRODUCT-X"}
    assert await scalar(migrated, "SELECT committed_fen FROM pools WHERE account = :a",
                        a=_account("PRODUCT-X")) == CAP
