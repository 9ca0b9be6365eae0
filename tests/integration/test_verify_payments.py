"""/v1/audit/verify holds every payment order to the journal: after a payment run with orders in
every state (settled, returned and waiting, sent, ready, cancelled) it is ok; a one-fen edit of an
order's amount, a status flipped in the database, or a settled order moved to another beneficiary
is caught and named, and verify is ok again once the row is put back. (Waiting for a payee, ready
and failed are one state to the journal, since readiness moves no money: replay tells them apart.)"""

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
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.ledger import assessed, known_staff, ledger_loop, new_applicant, process, receipt, scalar
from tests.support.payments import finalized, finalized_loop, payee, payees_loop, received_with_payee
from tools.bank_simulator import camt054_for, read_pain001

pytestmark = pytest.mark.integration

XML = {"Content-Type": "application/xml"}


@dataclass
class Paid:
    maker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    orders: dict[str, str]  # what happened to it → order id

    async def verify(self) -> dict[str, Any]:
        resp = await self.client.get("/v1/audit/verify", headers=AUD)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def exec(self, sql: str, **params: object) -> None:
        async with self.maker() as session, session.begin():
            await session.execute(text(sql), params)


@pytest.fixture(scope="module")
async def paid(settings: Settings) -> AsyncIterator[Paid]:
    engine = make_engine(settings.database_url, "ledger")
    maker = make_sessionmaker(engine)
    decide, payees, finals = ledger_loop(maker, settings), payees_loop(maker, settings), finalized_loop(maker, settings)
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
            officer = await known_staff(maker, "赵六", "payment_officer")
            second = await known_staff(maker, "孙八", "payment_officer")

            async def award(amount: str) -> str:
                r = receipt("GT-EQUITY", new_applicant(), f"ROUND-{amount}", amount, review="auto")
                await process(payees, [received_with_payee(r, payee())], topic=APPLICATIONS)
                await process(decide, [assessed(r)])
                await process(finals, [finalized(r, amount)], topic=ANNOUNCEMENTS)
                return str(r["application_id"])

            async def send() -> bytes:
                batch = (await client.post("/v1/payment-batches", json={}, headers=officer)).json()["id"]
                assert (await client.post(f"/v1/payment-batches/{batch}/approve", headers=second)).status_code == 200
                return (await client.get(f"/v1/payment-batches/{batch}/pain.001", headers=officer)).content

            apps = {"settled": await award("1000.00"), "returned": await award("2000.00"),
                    "settled_too": await award("3000.00"), "cancelled": await award("4000.00")}
            assert (await client.post(f"/v1/awards/{apps['cancelled']}/revoke", json={"reason": "x"},
                                      headers=OP)).status_code == 200
            orders = {k: str(await scalar(maker, "SELECT id FROM payment_orders WHERE application_id = :a", a=a))
                      for k, a in apps.items()}
            statement = camt054_for(read_pain001(await send()), returned={orders["returned"]})
            resp = await client.post("/v1/bank/statements", content=statement, headers={**officer, **XML})
            assert resp.json()["outcomes"] == {"settled": 2, "returned": 1}
            apps["sent"] = await award("5000.00")
            await send()
            apps["ready"] = await award("6000.00")
            orders |= {k: str(await scalar(maker, "SELECT id FROM payment_orders WHERE application_id = :a", a=a))
                       for k, a in apps.items() if k in ("sent", "ready")}
            yield Paid(maker, client, orders)
    finally:
        await engine.dispose()


async def test_a_payment_run_with_orders_in_every_state_verifies(paid: Paid) -> None:
    statuses = await scalar(paid.maker, "SELECT array_agg(DISTINCT status) FROM payment_orders")
    assert set(statuses) == {"settled", "awaiting_payee", "cancelled", "sent", "ready"}
    report = await paid.verify()
    assert report["ok"] is True, report


@pytest.mark.parametrize("which", ["settled", "returned", "sent", "ready", "cancelled"])
async def test_a_one_fen_edit_of_an_orders_amount_is_caught(paid: Paid, which: str) -> None:
    order = paid.orders[which]
    await paid.exec("UPDATE payment_orders SET amount_fen = amount_fen + 1 WHERE id = :o", o=order)
    try:
        report = await paid.verify()
    finally:
        await paid.exec("UPDATE payment_orders SET amount_fen = amount_fen - 1 WHERE id = :o", o=order)
    assert report["ok"] is False
    assert f"payment order {order} " in report["problem"], report
    assert (await paid.verify())["ok"] is True


@pytest.mark.parametrize(("which", "flipped"), [("settled", "ready"), ("sent", "settled"), ("sent", "ready"),
                                                ("returned", "cancelled"), ("cancelled", "awaiting_payee")])
async def test_a_status_flipped_in_the_database_is_caught(paid: Paid, which: str, flipped: str) -> None:
    order = paid.orders[which]
    before = await scalar(paid.maker, "SELECT status FROM payment_orders WHERE id = :o", o=order)
    await paid.exec("UPDATE payment_orders SET status = :s WHERE id = :o", s=flipped, o=order)
    try:
        report = await paid.verify()
    finally:
        await paid.exec("UPDATE payment_orders SET status = :s WHERE id = :o", s=before, o=order)
    assert report["ok"] is False
    assert f"payment order {order} is {flipped} " in report["problem"], report
    assert (await paid.verify())["ok"] is True


async def test_a_settled_order_moved_to_another_beneficiary_is_caught_by_the_paid_account(paid: Paid) -> None:
    order = paid.orders["settled"]
    before = await scalar(paid.maker, "SELECT applicant_id FROM payment_orders WHERE id = :o", o=order)
    await paid.exec("UPDATE payment_orders SET applicant_id = :b WHERE id = :o", b=new_applicant(), o=order)
    try:
        report = await paid.verify()
    finally:
        await paid.exec("UPDATE payment_orders SET applicant_id = :b WHERE id = :o", b=before, o=order)
    assert report["ok"] is False
    assert report["problem"].startswith("beneficiary ") and "paid:" in report["problem"], report
    assert (await paid.verify())["ok"] is True
