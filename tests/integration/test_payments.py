"""Payments against real PostgreSQL: a finalized award is posted and ordered (waiting for its payee,
then ready), batched with control totals, approved by a second officer (four eyes), exported as a
pain.001.001.09 valid against the official XSD (the same bytes on every download), and the bank's
answers, written by the bank simulator from that very document, applied: a pain.002 rejection, a
camt.054 that settles and returns, a return batched again after a payee fix, unmatched entries,
the same documents imported twice, masked account numbers, the 409s; and afterwards the journal
verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.ledger import assessed, known_staff, ledger_loop, new_applicant, process, receipt, scalar
from tests.support.payments import (
    assert_valid,
    finalized,
    finalized_loop,
    payee,
    payee_updated,
    payees_loop,
    received_with_payee,
)
from tools.bank_simulator import Initiation, Transfer, camt054_for, pain002_for, read_pain001

pytestmark = pytest.mark.integration

XML = {"Content-Type": "application/xml"}
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


@dataclass
class Payments:
    maker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    decide: ConsumerLoop
    payees: ConsumerLoop
    finals: ConsumerLoop
    officer: dict[str, str]
    second: dict[str, str]
    auditor: dict[str, str]

    async def award(self, amount: str = "1000000.00", *, with_payee: bool = True) -> dict[str, Any]:
        """An auto-approved GT-EQUITY award, finalized; its payee known at receipt or not."""
        r = receipt("GT-EQUITY", new_applicant(), f"ROUND-{amount}-{id(self)}", amount, review="auto")
        if with_payee:
            await self.applications(received_with_payee(r, payee()))
        await process(self.decide, [assessed(r)])
        await process(self.finals, [finalized(r, amount)], topic=ANNOUNCEMENTS)
        return r

    async def applications(self, *events: Event) -> None:
        await process(self.payees, list(events), topic=APPLICATIONS)

    async def order(self, application_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = await self.client.get("/v1/payment-orders", params={"limit": 200}, headers=headers or self.officer)
        assert resp.status_code == 200, resp.text
        (found,) = [o for o in resp.json()["items"] if o["application_id"] == application_id]
        return dict(found)

    async def batch(self, **body: Any) -> httpx.Response:
        return await self.client.post("/v1/payment-batches", json=body, headers=self.officer)

    async def send(self, *, limit: int = 20_000) -> tuple[str, bytes]:
        """Batch every ready order, approve by the second officer, download: the batch and its pain.001."""
        created = await self.batch(limit=limit)
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]
        approved = await self.client.post(f"/v1/payment-batches/{batch_id}/approve", headers=self.second)
        assert approved.status_code == 200, approved.text
        doc = await self.client.get(f"/v1/payment-batches/{batch_id}/pain.001", headers=self.officer)
        assert doc.status_code == 200, doc.text
        return batch_id, doc.content

    async def statement(self, body: bytes) -> httpx.Response:
        return await self.client.post("/v1/bank/statements", content=body, headers={**self.officer, **XML})

    async def status_report(self, body: bytes) -> httpx.Response:
        return await self.client.post("/v1/bank/status-reports", content=body, headers={**self.officer, **XML})

    async def verify(self) -> dict[str, Any]:
        resp = await self.client.get("/v1/audit/verify", headers=AUD)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


@pytest.fixture(scope="module")
async def pay(settings: Settings) -> AsyncIterator[Payments]:
    engine = make_engine(settings.database_url, "ledger")
    maker = make_sessionmaker(engine)
    try:
        async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
            yield Payments(maker, client, ledger_loop(maker, settings), payees_loop(maker, settings),
                           finalized_loop(maker, settings),
                           officer=await known_staff(maker, "赵六", "payment_officer"),
                           second=await known_staff(maker, "孙八", "payment_officer"),
                           auditor=await known_staff(maker, "王五", "auditor"))
    finally:
        await engine.dispose()


async def _settle_everything_ready(pay: Payments) -> None:
    """Clear the ready orders other tests left, so that each test batches its own."""
    created = await pay.batch(limit=20_000)
    if created.status_code == 409:
        return
    batch_id = created.json()["id"]
    await pay.client.post(f"/v1/payment-batches/{batch_id}/approve", headers=pay.second)
    doc = (await pay.client.get(f"/v1/payment-batches/{batch_id}/pain.001", headers=pay.officer)).content
    assert (await pay.statement(camt054_for(read_pain001(doc)))).status_code == 200


async def test_finalization_orders_payment_waiting_for_the_payee_then_ready(pay: Payments) -> None:
    r = await pay.award("250000.00", with_payee=False)
    app = r["application_id"]
    order = await pay.order(app)
    assert (order["status"], order["amount"], order["payee"]) == ("awaiting_payee", "250000.00", None)
    assert order["id"].startswith("pay_")
    kinds = await scalar(pay.maker, "SELECT array_agg(kind ORDER BY seq) FROM journal_entries WHERE application_id = :a",
                         a=app)
    assert kinds[-1] == "posting"
    await pay.applications(payee_updated(r, payee("6222020000001111")))
    order = await pay.order(app)
    assert order["status"] == "ready"
    assert order["payee"]["account_number"] == "6222020000001111"
    # a second finalisation changes nothing
    await process(pay.finals, [finalized(r, "250000.00")], topic=ANNOUNCEMENTS)
    assert await scalar(pay.maker, "SELECT count(*) FROM payment_orders WHERE application_id = :a", a=app) == 1
    events = await scalar(pay.maker, "SELECT array_agg(envelope->'data'->>'status' ORDER BY seq) FROM outbox "
                                     "WHERE type = 'payment.ordered' AND subject = :a", a=app)
    assert events == ["awaiting_payee", "ready"]


async def test_account_numbers_are_masked_for_all_but_payment_officers(pay: Payments) -> None:
    r = await pay.award("10000.00")
    full = await pay.order(r["application_id"])
    assert full["payee"]["account_number"] == "31050161393600000123"
    for headers in (AUD, pay.auditor):
        masked = await pay.order(r["application_id"], headers)
        assert masked["payee"]["account_number"] is None
        assert masked["payee"]["masked_account"] == "****0123"
    event = await scalar(pay.maker, "SELECT envelope::text FROM outbox WHERE type = 'payment.ordered' AND subject = :a",
                         a=r["application_id"])
    assert "31050161393600000123" not in event and "****0123" in event


async def test_a_batch_is_approved_by_another_officer_exported_the_same_twice_and_settled(pay: Payments) -> None:
    await _settle_everything_ready(pay)
    a, b = await pay.award("1000000.00"), await pay.award("2345.67")
    assert (await pay.client.get("/v1/payment-batches/bat_nope/pain.001", headers=pay.officer)).status_code == 404
    created = await pay.batch()
    assert created.status_code == 201, created.text
    batch = created.json()
    assert (batch["status"], batch["count"], batch["control_sum"]) == ("created", 2, "1002345.67")
    # the pain.001 before approval, and an approval by the creator: 409 with the batch's status
    early = await pay.client.get(f"/v1/payment-batches/{batch['id']}/pain.001", headers=pay.officer)
    assert early.status_code == 409 and "created" in early.json()["detail"]
    own = await pay.client.post(f"/v1/payment-batches/{batch['id']}/approve", headers=pay.officer)
    assert own.status_code == 409 and "four eyes" in own.json()["detail"]
    assert (await pay.client.post(f"/v1/payment-batches/{batch['id']}/approve", headers=pay.second)).status_code == 200
    again = await pay.client.post(f"/v1/payment-batches/{batch['id']}/approve", headers=pay.second)
    assert again.status_code == 409 and "approved" in again.json()["detail"]
    # nothing left to batch
    assert (await pay.batch()).status_code == 409

    first = await pay.client.get(f"/v1/payment-batches/{batch['id']}/pain.001", headers=pay.officer)
    second = await pay.client.get(f"/v1/payment-batches/{batch['id']}/pain.001", headers=pay.officer)
    assert first.status_code == 200 and first.headers["content-type"] == "application/xml"
    assert first.content == second.content
    assert_valid("pain.001.001.09", first.content)
    root = etree.fromstring(first.content)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == batch["id"]
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "1002345.67"
    ids = root.xpath("//p:CdtTrfTxInf/p:PmtId/p:EndToEndId/text()", namespaces=NS)
    orders = {(await pay.order(x["application_id"]))["id"] for x in (a, b)}
    assert set(ids) == orders
    assert {e.get("Ccy") for e in root.xpath("//p:InstdAmt", namespaces=NS)} == {"CNY"}
    assert (await pay.order(a["application_id"]))["status"] == "sent"
    sent = await scalar(pay.maker, "SELECT count(*) FROM outbox WHERE type = 'payment.sent' AND subject = ANY(:a)",
                        a=[a["application_id"], b["application_id"]])
    assert sent == 2
    # revoking an award whose payment is sent: 409, money has left
    revoke = await pay.client.post(f"/v1/awards/{a['application_id']}/revoke", json={"reason": "x"}, headers=OP)
    assert revoke.status_code == 409 and "money has left" in revoke.json()["detail"]

    camt = camt054_for(read_pain001(first.content))
    assert_valid("camt.054.001.08", camt)
    settled = await pay.statement(camt)
    assert settled.status_code == 200, settled.text
    assert settled.json()["outcomes"] == {"settled": 2}
    assert (await pay.order(a["application_id"]))["status"] == "settled"
    # the same statement again changes nothing
    twice = await pay.statement(camt)
    assert twice.status_code == 200 and twice.json()["already_imported"] is True
    assert await scalar(pay.maker, "SELECT count(*) FROM outbox WHERE type = 'payment.settled' AND subject = ANY(:a)",
                        a=[a["application_id"], b["application_id"]]) == 2
    view = (await pay.client.get(f"/v1/payment-batches/{batch['id']}", headers=pay.auditor)).json()
    assert view["status"] == "sent"
    assert view["by_status"] == {"settled": {"count": 2, "sum": "1002345.67"}}
    assert (await pay.client.post(f"/v1/awards/{a['application_id']}/revoke", json={"reason": "x"},
                                  headers=OP)).status_code == 409
    assert (await pay.verify())["ok"] is True


async def test_a_rejection_fails_and_a_return_goes_back_until_the_payee_is_fixed(pay: Payments) -> None:
    await _settle_everything_ready(pay)
    kept, returned, rejected = await pay.award("100.00"), await pay.award("200.00"), await pay.award("300.00")
    batch_id, document = await pay.send()
    initiation = read_pain001(document)
    order_of = {x["application_id"]: (await pay.order(x["application_id"]))["id"] for x in (kept, returned, rejected)}
    report = pain002_for(initiation, rejected={order_of[rejected["application_id"]]})
    applied = await pay.status_report(report)
    assert applied.status_code == 200, applied.text
    assert applied.json()["outcomes"] == {"accepted": 2, "failed": 1}
    failed = await pay.order(rejected["application_id"])
    assert (failed["status"], failed["reason_code"]) == ("failed", "AC01")

    camt = camt054_for(initiation, returned={order_of[returned["application_id"]]},
                       rejected={order_of[rejected["application_id"]]})
    assert (await pay.statement(camt)).json()["outcomes"] == {"settled": 1, "returned": 1}
    back = await pay.order(returned["application_id"])
    assert (back["status"], back["reason_code"], back["batch_id"]) == ("awaiting_payee", "AC04", None)
    assert (await pay.batch()).status_code == 409  # neither the returned nor the failed one is ready
    by_status = (await pay.client.get(f"/v1/payment-batches/{batch_id}", headers=pay.officer)).json()["by_status"]
    assert by_status == {"failed": {"count": 1, "sum": "300.00"}, "returned": {"count": 1, "sum": "200.00"},
                         "settled": {"count": 1, "sum": "100.00"}}

    await pay.applications(payee_updated(returned, payee("6222020000009999")))
    assert (await pay.order(returned["application_id"]))["status"] == "ready"
    second_batch, second_doc = await pay.send()
    assert second_batch != batch_id
    assert read_pain001(second_doc).transfers[0].end_to_end_id == order_of[returned["application_id"]]
    assert b"6222020000009999" in second_doc
    assert (await pay.statement(camt054_for(read_pain001(second_doc)))).json()["outcomes"] == {"settled": 1}
    assert (await pay.order(returned["application_id"]))["status"] == "settled"
    transit = await scalar(pay.maker, "SELECT array_agg(kind ORDER BY seq) FROM journal_entries WHERE application_id = :a",
                           a=returned["application_id"])
    assert transit[-5:] == ["posting", "payment_sent", "payment_returned", "payment_sent", "payment_settled"]
    assert (await pay.verify())["ok"] is True


async def test_unmatched_entries_are_kept_and_nothing_else_changes(pay: Payments) -> None:
    await _settle_everything_ready(pay)
    r = await pay.award("500.00")
    _, document = await pay.send()
    initiation = read_pain001(document)
    # an amount that differs, and an EndToEndId that is no order
    wrong = initiation.transfers[0].__class__(initiation.transfers[0].end_to_end_id, initiation.transfers[0].amount + 1,
                                              "CNY")
    stranger = wrong.__class__("pay_nobody", wrong.amount, "CNY")
    odd = camt054_for(initiation.__class__(initiation.msg_id, initiation.pmt_inf_id, initiation.debtor_account,
                                           (wrong, stranger)), msg_id="ODD-1")
    resp = await pay.statement(odd)
    assert resp.status_code == 200 and resp.json()["outcomes"] == {"unmatched": 2}
    assert (await pay.order(r["application_id"]))["status"] == "sent"
    listed = (await pay.client.get("/v1/bank/unmatched", params={"limit": 200}, headers=pay.auditor)).json()["items"]
    mine = [u for u in listed if u["msg_id"] == "ODD-1"]
    assert {u["end_to_end_id"] for u in mine} == {"pay_nobody", wrong.end_to_end_id}
    assert all(u["note"] for u in mine)


async def test_bad_documents_are_refused_with_the_element_and_nothing_applied(pay: Payments) -> None:
    await _settle_everything_ready(pay)
    r = await pay.award("700.00")
    batch_id, document = await pay.send()
    camt = camt054_for(read_pain001(document))
    cases = {
        camt[:len(camt) // 2]: "not well-formed",
        document: "expected a camt",
        camt.replace(b"<Sts><Cd>BOOK</Cd></Sts>", b"<Sts><Cd>BOOKED</Cd></Sts>"): "Sts/Cd",
        camt.replace(b"<CdtDbtInd>DBIT</CdtDbtInd>", b"", 1): "Ntry[1]",
    }
    for body, named in cases.items():
        resp = await pay.statement(body)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert named in resp.json()["detail"], resp.json()
    assert (await pay.statement(camt)).status_code == 200  # the good one still applies, once
    assert (await pay.order(r["application_id"]))["status"] == "settled"
    wrong_type = await pay.client.post("/v1/bank/statements", content=camt,
                                       headers={**pay.officer, "Content-Type": "text/xml"})
    assert wrong_type.status_code == 415
    assert (await pay.client.post("/v1/bank/statements", content=camt, headers={**AUD, **XML})).status_code == 403
    del batch_id


async def test_an_answer_for_a_batch_not_sent_is_a_409_with_its_status(pay: Payments) -> None:
    await _settle_everything_ready(pay)
    await pay.award("900.00")
    created = (await pay.batch()).json()
    orders = (await pay.client.get("/v1/payment-orders", params={"batch_id": created["id"]},
                                   headers=pay.officer)).json()["items"]
    initiation = Initiation(created["id"], created["id"], "0",
                            tuple(Transfer(o["id"], Decimal(o["amount"]), "CNY") for o in orders))
    resp = await pay.status_report(pain002_for(initiation))
    assert resp.status_code == 409 and "created" in resp.json()["detail"]
    resp = await pay.statement(camt054_for(initiation))
    assert resp.status_code == 409 and "created" in resp.json()["detail"]


async def test_revoking_an_award_not_yet_sent_cancels_its_order(pay: Payments) -> None:
    r = await pay.award("800.00")
    resp = await pay.client.post(f"/v1/awards/{r['application_id']}/revoke", json={"reason": "wrong"}, headers=OP)
    assert resp.status_code == 200, resp.text
    assert (await pay.order(r["application_id"]))["status"] == "cancelled"
    balance = await scalar(pay.maker, "SELECT sum((p->>'amount')::bigint) FROM journal_entries, "
                                      "jsonb_array_elements(postings) p WHERE p->>'account' = :acc",
                           acc=f"payable:{r['applicant']['id']}")
    assert balance == 0
    assert (await pay.verify())["ok"] is True
