"""`grantline-replay` after a full payment run: finalisations (one waiting for its payee), a payee
changed while its order is ready, a revocation cancelling an order not yet sent, a batch approved
by a second officer and sent, the bank's pain.002 rejecting one order and its camt.054 settling
some and returning another, both payees fixed, a second batch settled. The replay, from the
eligibility and intake outboxes and from the broker, rebuilds payees, orders, batches, their items,
the payment events and the journal equal to the live ones; a one-fen edit of a live order and a
batch's status flipped are named as differences."""

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
from shared.contracts.envelope import Event
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import OP
from tests.support.ledger import (
    assessed,
    known_staff,
    ledger_loop,
    new_applicant,
    process,
    publish_assessments,
    receipt,
    run_replay,
    scalar,
)
from tests.support.payments import (
    finalized,
    finalized_loop,
    payee,
    payee_updated,
    payees_loop,
    publish_applications,
    received_with_payee,
)
from tools.bank_simulator import camt054_for, pain002_for, read_pain001

pytestmark = pytest.mark.integration

XML = {"Content-Type": "application/xml"}


@dataclass
class Run:
    settings: Settings
    ledger: async_sessionmaker[AsyncSession]
    intake: async_sessionmaker[AsyncSession]
    eligibility: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    decide: ConsumerLoop
    payees: ConsumerLoop
    finals: ConsumerLoop
    officer: dict[str, str]
    second: dict[str, str]

    async def applications(self, *events: Event) -> None:
        await publish_applications(self.settings, self.intake, events)
        await process(self.payees, list(events), topic=APPLICATIONS)

    async def award(self, amount: str, *, with_payee: bool = True) -> dict[str, Any]:
        r = receipt("GT-EQUITY", new_applicant(), f"ROUND-{amount}", amount, review="auto")
        if with_payee:
            await self.applications(received_with_payee(r, payee()))
        events = [assessed(r)]
        await publish_assessments(self.settings, self.eligibility, events)
        await process(self.decide, events)
        await process(self.finals, [finalized(r, amount)], topic=ANNOUNCEMENTS)
        return r

    async def order_id(self, r: dict[str, Any]) -> str:
        return str(await scalar(self.ledger, "SELECT id FROM payment_orders WHERE application_id = :a",
                                a=r["application_id"]))

    async def send(self) -> tuple[str, bytes]:
        created = await self.client.post("/v1/payment-batches", json={"limit": 1000}, headers=self.officer)
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]
        approved = await self.client.post(f"/v1/payment-batches/{batch_id}/approve", headers=self.second)
        assert approved.status_code == 200, approved.text
        document = await self.client.get(f"/v1/payment-batches/{batch_id}/pain.001", headers=self.officer)
        assert document.status_code == 200, document.text
        return batch_id, document.content

    async def bank(self, path: str, body: bytes) -> dict[str, int]:
        resp = await self.client.post(path, content=body, headers={**self.officer, **XML})
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["outcomes"])


@pytest.fixture(scope="module")
async def run(settings: Settings) -> AsyncIterator[Run]:
    engines = [make_engine(settings.database_url, schema) for schema in ("ledger", "intake", "eligibility")]
    ledger, intake, eligibility = (make_sessionmaker(e) for e in engines)
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=ledger)) as client:
            live = Run(settings, ledger, intake, eligibility, client, ledger_loop(ledger, settings),
                       payees_loop(ledger, settings), finalized_loop(ledger, settings),
                       officer=await known_staff(ledger, "赵六", "payment_officer"),
                       second=await known_staff(ledger, "孙八", "payment_officer"))
            kept, returned, rejected = (await live.award("100.00"), await live.award("200.00"),
                                        await live.award("300.00"))
            waiting = await live.award("400.00", with_payee=False)
            cancelled = await live.award("500.00")
            # a payee changed while its order is ready (no event of the ledger's): the batch sends the new one
            await live.applications(payee_updated(kept, payee("6222020000001234"), minutes=5))
            await live.applications(payee_updated(waiting, payee("6222020000004444"), minutes=6))  # → ready
            revoked = await client.post(f"/v1/awards/{cancelled['application_id']}/revoke", json={"reason": "撤销"},
                                        headers=OP)
            assert revoked.status_code == 200, revoked.text

            batch_id, document = await live.send()
            initiation = read_pain001(document)
            assert len(initiation.transfers) == 4
            rejected_id, returned_id = await live.order_id(rejected), await live.order_id(returned)
            assert await live.bank("/v1/bank/status-reports",
                                   pain002_for(initiation, rejected={rejected_id})) == {"accepted": 3, "failed": 1}
            assert await live.bank("/v1/bank/statements", camt054_for(
                initiation, returned={returned_id}, rejected={rejected_id})) == {"settled": 2, "returned": 1}
            await live.applications(payee_updated(returned, payee("6222020000002222"), minutes=20),
                                    payee_updated(rejected, payee("6222020000003333"), minutes=20))
            second_batch, second_document = await live.send()
            assert second_batch != batch_id
            assert await live.bank("/v1/bank/statements", camt054_for(read_pain001(second_document))) == {"settled": 2}
            yield live
    finally:
        for engine in engines:
            await engine.dispose()


async def _exec(maker: async_sessionmaker[AsyncSession], sql: str, **params: object) -> None:
    async with maker() as session, session.begin():
        await session.execute(text(sql), params)


async def test_the_run_paid_every_way(run: Run) -> None:
    async with run.ledger() as session:
        statuses = sorted((await session.execute(text("SELECT status FROM payment_orders"))).scalars())
        kinds = set((await session.execute(text("SELECT DISTINCT kind FROM journal_entries"))).scalars())
        batches = await session.scalar(text("SELECT count(*) FROM payment_batches WHERE status = 'sent'"))
    assert statuses == ["cancelled", "settled", "settled", "settled", "settled"]
    assert kinds >= {"posting", "payment_sent", "payment_settled", "payment_failed", "payment_returned",
                     "payment_cancelled"}
    assert batches == 2


async def test_replay_from_the_outboxes_is_equal(run: Run) -> None:
    code, out, err = await run_replay(run.settings, "--source", "outbox")
    assert code == 0, out + err
    assert "replay EQUAL" in out and "1 revocations" in out
    steps = int(out.split(" payment steps")[0].rsplit(" ", 1)[1])
    # 5 finalisations, 8 payee events (4 receipts with one, 4 updates), 2 batches x 3 steps, 3 bank chunks
    assert steps == 5 + 8 + 6 + 3, out


async def test_replay_from_the_broker_is_equal_and_rebuilds_every_payment_table(run: Run) -> None:
    code, out, err = await run_replay(run.settings, "--schema", "ledger_replay_paid", "--keep")
    assert code == 0, out + err
    assert "replay EQUAL" in out and "source=broker" in out
    try:
        for table in ("payees", "payment_orders", "payment_batch_items", "journal_entries"):
            live = await scalar(run.ledger, f"SELECT count(*) FROM {table}")
            kept = await scalar(run.ledger, f"SELECT count(*) FROM ledger_replay_paid.{table}")
            assert live == kept and live > 0, table
        sums = "SELECT string_agg(id || ':' || control_sum_fen || ':' || status, ',' ORDER BY id) FROM {}"
        assert (await scalar(run.ledger, sums.format("payment_batches"))
                == await scalar(run.ledger, sums.format("ledger_replay_paid.payment_batches")))
    finally:
        await _exec(run.ledger, "DROP SCHEMA ledger_replay_paid CASCADE")


async def test_a_one_fen_edit_of_a_live_order_is_named(run: Run) -> None:
    order_id = await scalar(run.ledger, "SELECT id FROM payment_orders WHERE status = 'settled' ORDER BY id LIMIT 1")
    await _exec(run.ledger, "UPDATE payment_orders SET amount_fen = amount_fen + 1 WHERE id = :o", o=order_id)
    try:
        code, out, err = await run_replay(run.settings, "--source", "outbox")
    finally:
        await _exec(run.ledger, "UPDATE payment_orders SET amount_fen = amount_fen - 1 WHERE id = :o", o=order_id)
    assert code == 1, out + err
    assert "replay DIFFERENT" in out
    assert f"payment_orders {order_id}: amount_fen live" in out


async def test_a_batch_items_status_flipped_in_the_database_is_named(run: Run) -> None:
    batch_id, order_id = (await _one(run.ledger, "SELECT batch_id, order_id FROM payment_batch_items "
                                                 "WHERE status = 'returned'"))
    flip = "UPDATE payment_batch_items SET status = :s WHERE batch_id = :b AND order_id = :o"
    await _exec(run.ledger, flip, s="settled", b=batch_id, o=order_id)
    try:
        code, out, err = await run_replay(run.settings, "--source", "outbox")
    finally:
        await _exec(run.ledger, flip, s="returned", b=batch_id, o=order_id)
    assert code == 1, out + err
    assert f"payment_batch_items {batch_id} {order_id}: status live 'settled' replay 'returned'" in out


async def _one(maker: async_sessionmaker[AsyncSession], sql: str) -> tuple[Any, ...]:
    async with maker() as session:
        return tuple((await session.execute(text(sql))).one())
