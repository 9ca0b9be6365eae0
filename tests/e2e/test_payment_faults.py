"""Payments under fire (issue 15): awards finalised for real, paid through a four-eyes batch, and
the bank's camt.054 imported while the ledger is SIGKILLed part way. The bank office posts the
same document again once the ledger is back; afterwards every order is in exactly one state, the
one the document gives it (settled, or awaiting_payee for a return), the journal holds exactly one
settlement or return per order, verify is ok, and the partner sees `payment.status: settled`."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.auth import AUD
from tests.support.client import random_uscc
from tests.support.payments import (
    PAID_AWARD,
    any_order,
    officer,
    open_payment_scenario,
    paid_load,
    payment_journal,
    payment_orders,
    wait_key_known,
)
from tests.support.scenarios import Scenario, post_all
from tests.support.waiting import eventually_sync
from tools.bank_simulator import camt054_for, choose, read_pain001

pytestmark = pytest.mark.e2e

ENTERPRISES = 40  # ten 100万 awards each: 400 orders
RETURNS = 7  # the first transfers of the pain.001, returned by the bank (RtrInf AC04)
# The treasury's other debits in the same notification, spread among ours: 2,000 entries, four
# chunks of the import, so the ledger dies with orders of every chunk still to settle (and the
# unmatched entries must not be kept twice either).
OTHERS = 1_600
XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def scenario(pg_admin_dsn: str, kafka_bootstrap: str) -> Iterator[Scenario]:
    with open_payment_scenario(pg_admin_dsn, kafka_bootstrap, notice_period_s=2) as opened:
        yield opened


def test_sigkill_ledger_mid_statement_import(scenario: Scenario) -> None:
    stack = scenario.stack
    intake, ledger = stack.services["intake"].url, stack.services["ledger"].url
    bodies = paid_load([random_uscc() for _ in range(ENTERPRISES)])
    creator, approver = officer(intake, "钱出纳"), officer(intake, "孙复核")

    asyncio.run(post_all(scenario, bodies))
    assert len(scenario.accepted) == len(bodies), "every application is accepted"
    wait_key_known(ledger, creator)
    wait_key_known(ledger, approver)
    # Decided, announced, final after the notice period, ordered: each with its payee, so ready.
    ready = eventually_sync(lambda: payment_orders(ledger, creator, "ready"), "every award's order ready",
                            timeout_s=120, every_s=0.5, until=lambda found: len(found) == len(bodies))
    assert {o["application_id"] for o in ready} == set(scenario.accepted.values())
    assert {o["amount"] for o in ready} == {PAID_AWARD}

    made = httpx.post(f"{ledger}/v1/payment-batches", json={"program": "GT-EQUITY", "year": 2024, "limit": 20_000},
                      headers=creator, timeout=60)
    assert made.status_code == 201, made.text
    batch = made.json()
    assert batch["count"] == len(bodies)
    own = httpx.post(f"{ledger}/v1/payment-batches/{batch['id']}/approve", headers=creator, timeout=30)
    assert own.status_code == 409, "four eyes: the creator does not approve its own batch"
    approved = httpx.post(f"{ledger}/v1/payment-batches/{batch['id']}/approve", headers=approver, timeout=30)
    assert approved.status_code == 200, approved.text
    pain001 = httpx.get(f"{ledger}/v1/payment-batches/{batch['id']}/pain.001", headers=creator, timeout=120)
    assert pain001.status_code == 200, pain001.text

    # The bank's answer: every transfer booked, the first RETURNS returned, others of the account.
    initiation = read_pain001(pain001.content)
    returned, _ = choose(initiation, RETURNS, 0)
    camt = camt054_for(initiation, returned=returned, others=OTHERS)
    expected = {t.end_to_end_id: "awaiting_payee" if t.end_to_end_id in returned else "settled"
                for t in initiation.transfers}
    assert len(expected) == len(bodies)

    first: list[httpx.Response | BaseException] = []

    def post_statement() -> None:
        try:
            first.append(httpx.post(f"{ledger}/v1/bank/statements", content=camt, headers={**creator, **XML},
                                    timeout=120))
        except httpx.HTTPError as exc:
            first.append(exc)

    poster = threading.Thread(target=post_statement)
    poster.start()
    # The import applies its entries a chunk a transaction: once one chunk is in, the ledger dies.
    eventually_sync(lambda: any_order(ledger, creator, "settled") or not poster.is_alive(),
                    "the import's first chunk applied", timeout_s=60, every_s=0.02)
    stack.kill("ledger")
    poster.join(timeout=30)
    assert first and isinstance(first[0], httpx.HTTPError), f"the import was cut off, not answered: {first}"
    stack.start("ledger")
    stack.wait_healthy(("ledger",))

    cut = Counter(o["status"] for o in payment_orders(ledger, creator))
    settled_before = cut["settled"]
    assert 0 < settled_before < Counter(expected.values())["settled"], f"killed part way through: {cut}"

    # As the bank office would: the same document again. It goes on where the import stopped.
    again = httpx.post(f"{ledger}/v1/bank/statements", content=camt, headers={**creator, **XML}, timeout=120)
    assert again.status_code == 200, again.text
    assert again.json()["already_imported"] is False
    assert again.json()["entries"] == len(bodies) + OTHERS
    assert again.json()["outcomes"] == {"settled": len(bodies) - RETURNS, "returned": RETURNS, "unmatched": OTHERS}
    third = httpx.post(f"{ledger}/v1/bank/statements", content=camt, headers={**creator, **XML}, timeout=120)
    assert third.status_code == 200 and third.json()["already_imported"] is True

    orders = payment_orders(ledger, creator)
    assert len(orders) == len({o["id"] for o in orders}) == len(bodies), "each order once"
    assert {o["id"]: o["status"] for o in orders} == expected, "each order in the state the document gives it"
    assert {o["reason_code"] for o in orders if o["id"] in returned} == {"AC04"}

    journal = payment_journal(scenario.db)
    by_order = {o["application_id"]: expected[o["id"]] for o in orders}
    for app_id, status in by_order.items():
        step = "payment_returned" if status == "awaiting_payee" else "payment_settled"
        assert journal[app_id] == ["posting", "payment_sent", step], (app_id, journal[app_id])
    assert set(journal) == set(by_order), "no payment step for anything else"

    verify = httpx.get(f"{ledger}/v1/audit/verify", headers=AUD, timeout=60).json()
    assert verify["ok"] is True, verify

    paid = next(app_id for app_id, status in by_order.items() if status == "settled")
    shown = eventually_sync(lambda: scenario.partner.get(paid).get("payment") or {}, "the partner sees it paid",
                            timeout_s=30, every_s=0.2, until=lambda p: p.get("status") == "settled")
    assert shown["amount"] == PAID_AWARD
