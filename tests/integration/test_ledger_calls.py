"""The call (申报批次) passed on by the ledger against real PostgreSQL: award.decided (at once, held,
and re-decided after a revocation) and award.reviewed carry the receipt's `call_id`; a receipt
without a call publishes none; the stored data (decisions.data, reviews.data) never holds it (it is
in decisions.call_id), so grantline-replay still finds the ledger EQUAL, also for rows whose column
is empty as if stored before migration 0009."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import OP
from tests.support.ledger import (
    assessed,
    decided,
    known_staff,
    ledger_loop,
    new_applicant,
    process,
    publish_assessments,
    receipt,
    run_replay,
    scalar,
)

pytestmark = pytest.mark.integration

CALL = "call_h_0000000000000000001"
BUDGET = "900000000.00"


@dataclass
class Ledger:
    maker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    loop: ConsumerLoop
    settings: Settings
    eligibility: async_sessionmaker[AsyncSession]
    reviewer: dict[str, str]

    async def decide(self, *receipts: dict[str, Any]) -> list[dict[str, Any]]:
        events = [assessed(r) for r in receipts]
        await publish_assessments(self.settings, self.eligibility, events, broker=False)
        await process(self.loop, events)
        return await decided(self.maker, [r["application_id"] for r in receipts])

    async def stored(self, application_id: str) -> tuple[dict[str, Any], str | None]:
        async with self.maker() as session:
            row = (await session.execute(text("SELECT data, call_id FROM decisions WHERE application_id = :a"),
                                         {"a": application_id})).one()
        return dict(row.data), row.call_id


@pytest.fixture(scope="module")
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    engine, elig_engine = make_engine(settings.database_url, "ledger"), make_engine(settings.database_url, "eligibility")
    maker, eligibility = make_sessionmaker(engine), make_sessionmaker(elig_engine)
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
            yield Ledger(maker, client, ledger_loop(maker, settings), settings, eligibility,
                         reviewer=await known_staff(maker, "孙八", "reviewer"))
    finally:
        await engine.dispose()
        await elig_engine.dispose()


async def test_award_decided_carries_the_receipts_call_and_the_stored_data_does_not(ledger: Ledger) -> None:
    ent = new_applicant()
    with_call = receipt("GT-EQUITY", ent, "ROUND-CALL", "1000000.00", year=2025, call=(CALL, BUDGET), review="auto")
    without = receipt("GT-EQUITY", new_applicant(), "ROUND-NO-CALL", "1000000.00", review="auto")
    first, second = await ledger.decide(with_call, without)
    assert first["status"] == "approved" and first["call_id"] == CALL
    assert "call_id" not in second
    data, call_id = await ledger.stored(with_call["application_id"])
    assert call_id == CALL and "call_id" not in data
    assert data == {k: v for k, v in first.items() if k != "call_id"}
    data, call_id = await ledger.stored(without["application_id"])
    assert call_id is None and data == second


async def test_a_held_award_and_its_review_carry_the_call(ledger: Ledger) -> None:
    r = receipt("GT-PRODUCT", new_applicant(), "PRODUCT-CALL", "20000000.00", year=2025, call=(CALL, BUDGET),
                review="required", requested="20000000.00")
    (held,) = await ledger.decide(r)
    assert (held["status"], held["call_id"]) == ("pending_review", CALL)
    resp = await ledger.client.post(f"/v1/awards/{r['application_id']}/review",
                                    json={"decision": "approve", "amount": "15000000.00", "reason": "核定 1500万"},
                                    headers=ledger.reviewer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["call_id"] == CALL
    envelope = await scalar(ledger.maker, "SELECT envelope FROM outbox WHERE type = 'award.reviewed' AND subject = :a",
                            a=r["application_id"])
    assert envelope["data"]["call_id"] == CALL and envelope["data"]["status"] == "partially_approved"
    stored = await scalar(ledger.maker, "SELECT data FROM reviews WHERE application_id = :a", a=r["application_id"])
    assert "call_id" not in stored
    assert stored == {k: v for k, v in envelope["data"].items() if k != "call_id"}


async def test_a_re_decision_after_a_revocation_carries_the_call(ledger: Ledger) -> None:
    ent = new_applicant()
    first = receipt("GT-EQUITY", ent, "ROUND-CHAIN", "1000000.00", year=2025, call=(CALL, BUDGET), review="auto")
    second = receipt("GT-EQUITY", ent, "ROUND-CHAIN", "1000000.00", year=2025, call=(CALL, BUDGET), review="auto")
    a, b = await ledger.decide(first, second)
    assert (a["awarded"], b["awarded"]) == ("1000000.00", "0.00")  # the second is a duplicate
    revoke = await ledger.client.post(f"/v1/awards/{first['application_id']}/revoke", json={"reason": "撤回"},
                                      headers=OP)
    assert revoke.status_code == 200, revoke.text
    again = (await decided(ledger.maker, [second["application_id"]]))[-1]
    assert (again["awarded"], again["call_id"]) == ("1000000.00", CALL)
    data, call_id = await ledger.stored(second["application_id"])
    assert call_id == CALL and data == {k: v for k, v in again.items() if k != "call_id"}


async def test_replay_is_equal_also_for_rows_stored_before_the_column(ledger: Ledger) -> None:
    r = receipt("GT-EQUITY", new_applicant(), "ROUND-BEFORE-0009", "500000.00", year=2025, call=(CALL, BUDGET),
                review="auto")
    await ledger.decide(r)
    async with ledger.maker() as session, session.begin():  # as a row of a call without a budget, before 0009
        await session.execute(text("UPDATE decisions SET call_id = NULL WHERE application_id = :a"),
                              {"a": r["application_id"]})
    code, out, err = await run_replay(ledger.settings, "--source", "outbox")
    assert code == 0, out + err
    assert "replay EQUAL" in out
