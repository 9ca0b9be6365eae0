"""Payments in tests: the events the ledger's payment consumers take (payee on receipt, payee
updated, award finalized), their consumer loops, the official XSDs the documents are held to
(shipped by the `pain001` and `camt053` packages; found without importing them), and for the
end-to-end tests a stack whose awards finalise quickly, paid applications, payment officers and
the ledger's orders and journal read back."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
from aiokafka import AIOKafkaProducer
from lxml import etree
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import finalized_subscription, payees_subscription
from services.ledger.payments import documents
from services.ledger.payments.domain import BatchItem, Payer
from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import AwardFinalized, Payee, PayeeUpdated, new_typed_event
from shared.contracts.topics import APPLICATIONS
from shared.db.engine import make_engine
from shared.messaging.consumer import ConsumerLoop
from shared.messaging.outbox import add_events
from tests.support.auth import OPERATOR_TOKEN
from tests.support.client import create_partner
from tests.support.ledger import T0
from tests.support.processes import four_services
from tests.support.receiver import Receiver
from tests.support.scenarios import Scenario
from tests.support.waiting import eventually_sync
from tools.samples import make_body


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"the {name} package ships the XSD: install it"
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def xsd(message: str) -> etree.XMLSchema:
    """The official XSD of `message` (pain.001.001.09, camt.054.001.08, camt.053.001.08)."""
    if message.startswith("pain.001"):
        path = _package_dir("pain001") / "templates" / message / f"{message}.xsd"
    else:
        path = _package_dir("camt053") / "xsd" / f"{message}.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def assert_valid(message: str, document: bytes) -> None:
    schema = xsd(message)
    assert schema.validate(etree.fromstring(document)), str(schema.error_log)


def payee(number: str = "31050161393600000123", name: str = "上海某某生物科技有限公司") -> dict[str, str]:
    return {"account_name": name, "account_number": number, "bank_code": "105290061012"}


def received_with_payee(receipt: dict[str, Any], account: dict[str, str]) -> Event:
    """application.received as intake publishes it, with a payee."""
    application = {"program": receipt["program"], "year": receipt["year"], "applicant": receipt["applicant"],
                   "subject": receipt["subject"], "facts": {"event_date": "2024-03-18"}}
    return new_event("application.received", source="grantline.intake", subject=receipt["application_id"],
                     data={"application_id": receipt["application_id"], "partner_id": receipt["partner_id"],
                           "application": application, "payee": account}, time=T0)


def payee_updated(receipt: dict[str, Any], account: dict[str, str], minutes: int = 1) -> Event:
    data = PayeeUpdated(application_id=receipt["application_id"], partner_id=receipt["partner_id"],
                        applicant_id=receipt["applicant"]["id"], payee=Payee(**account),
                        updated_at=(T0 + timedelta(minutes=minutes)).isoformat())
    return new_typed_event(data, source="grantline.intake", subject=receipt["application_id"])


def finalized(receipt: dict[str, Any], amount: str) -> Event:
    data = AwardFinalized(application_id=receipt["application_id"], partner_id=receipt["partner_id"],
                          program=receipt["program"], year=receipt["year"], subject=receipt["subject"], amount=amount,
                          finalized_at=(T0 + timedelta(days=10)).isoformat())
    return new_typed_event(data, source="grantline.notify", subject=receipt["application_id"])


def payees_loop(maker: async_sessionmaker[AsyncSession], settings: Settings) -> ConsumerLoop:
    return ConsumerLoop(service="ledger", subscription=payees_subscription(settings.consumer_attempts_max),
                        maker=maker, bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace)


def finalized_loop(maker: async_sessionmaker[AsyncSession], settings: Settings) -> ConsumerLoop:
    return ConsumerLoop(service="ledger", subscription=finalized_subscription(settings.consumer_attempts_max),
                        maker=maker, bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace)


async def publish_applications(settings: Settings, intake: async_sessionmaker[AsyncSession],
                               events: Sequence[Event]) -> None:
    """As intake would: application.received / payee.updated into its outbox (its event history)
    and onto the broker's grantline.applications, keyed by applicant (grantline-replay reads either)."""

    def key(e: Event) -> str:
        return str(e.data["applicant_id"] if e.type == "payee.updated" else e.data["application"]["applicant"]["id"])

    async with intake() as session, session.begin():
        await add_events(session, [(e, key(e)) for e in events])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for e in events:
            await producer.send(settings.topic_namespace + APPLICATIONS, e.to_bytes(), key=key(e).encode())
        await producer.flush()
    finally:
        await producer.stop()


def batch_items(n: int, names: Sequence[str] = ("上海某某生物科技有限公司",)) -> list[BatchItem]:
    """n batch items with distinct order ids and amounts, payee names taken in turn from `names`."""
    return [BatchItem(f"pay_{i:020x}", f"app_{i}", "91310115MA1H7G0L0C", 100_000 + 7 * i, names[i % len(names)],
                      f"3105016139360{i:07d}", "105290061012") for i in range(n)]


def pain001_of(batch_id: str, items: Sequence[BatchItem], payer: Payer, created_at: datetime) -> Any:
    """The pain.001 message object pain001_document renders (for comparing writers)."""
    captured: list[Any] = []

    def keep(document: Any, namespace: str) -> bytes:
        captured.append(document)
        return b""

    with patch.object(documents, "render", keep):
        documents.pain001_document(batch_id, items, payer, created_at)
    return captured[0]


# ---------------------------------------------------------------------------------------------
# Payments end to end (tests/e2e): a stack whose awards finalise within seconds, applications
# that each carry a payee, two payment officers, and the ledger's orders and journal read back
# ---------------------------------------------------------------------------------------------

PAID_ROUNDS = 10  # GT-EQUITY awards of 100万 per enterprise: ten fill its 1000万 year exactly
PAID_FINANCING = "50000000.00"  # the program's threshold: 2% of it, 100万 each
PAID_AWARD = "1000000.00"
BANK_CODE = "105290061012"


@contextmanager
def open_payment_scenario(pg_dsn: str, bootstrap: str, *, notice_period_s: int = 2) -> Iterator[Scenario]:
    """The four services as processes (each on its database role), awards final `notice_period_s`
    after they are decided, a partner and its webhook receiver."""
    receiver = Receiver().start()
    try:
        with four_services(pg_dsn, bootstrap, "payfault", {
            "GRANTLINE_NOTICE_PERIOD_SECONDS": str(notice_period_s),
            "GRANTLINE_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "GRANTLINE_WEBHOOK_ATTEMPTS_MAX": "30",
            "GRANTLINE_LOG_LEVEL": "WARNING",
        }) as stack:
            partner = create_partner(stack.services["intake"].url, OPERATOR_TOKEN, f"{receiver.url}/hook/pay",
                                     name="payments")
            receiver.secrets["payments"] = partner.webhook_secret
            yield Scenario(stack, partner, receiver)
    finally:
        receiver.stop()


def paid_load(enterprises: Sequence[str]) -> list[dict[str, Any]]:
    """PAID_ROUNDS GT-EQUITY applications per enterprise (auto review: approved in full), each with
    a payee of its own account number."""
    bodies = []
    for e, ent in enumerate(enterprises):
        for i in range(PAID_ROUNDS):
            body = make_body("GT-EQUITY", applicant={"id": ent})
            body["subject"] = f"ROUND-{i:02d}"
            body["facts"]["financing_received"] = PAID_FINANCING
            body["payee"] = {"account_name": f"上海某某基因科技有限公司{e}", "account_number": f"622202{e:06d}{i:04d}",
                             "bank_code": BANK_CODE}
            bodies.append(body)
    return bodies


def officer(intake_url: str, name: str) -> dict[str, str]:
    """A payment officer registered on intake by the operator: the bearer header of its key."""
    made = httpx.post(f"{intake_url}/v1/staff", json={"name": name, "roles": ["payment_officer"]},
                      headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=30)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['api_key']}"}


def wait_key_known(ledger_url: str, headers: dict[str, str], timeout_s: float = 30) -> None:
    """Until the ledger's directory replica knows the key (staff.registered consumed)."""
    def known() -> bool:
        try:
            return httpx.get(f"{ledger_url}/v1/payment-orders", params={"limit": 1}, headers=headers,
                             timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    eventually_sync(known, "the payment officer's key known to the ledger", timeout_s=timeout_s, every_s=0.2)


def payment_orders(ledger_url: str, headers: dict[str, str], status: str | None = None) -> list[dict[str, Any]]:
    """Every payment order (of `status`), page by page."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200, **({"status": status} if status else {})}
    with httpx.Client(base_url=ledger_url, headers=headers, timeout=30) as client:
        while True:
            page = client.get("/v1/payment-orders", params=params)
            page.raise_for_status()
            body = page.json()
            found += body["items"]
            if not body.get("next_cursor"):
                return found
            params["cursor"] = body["next_cursor"]


def any_order(ledger_url: str, headers: dict[str, str], status: str) -> bool:
    """Whether one order at least is `status` (False while the ledger does not answer)."""
    try:
        page = httpx.get(f"{ledger_url}/v1/payment-orders", params={"status": status, "limit": 1}, headers=headers,
                         timeout=5)
    except httpx.HTTPError:
        return False
    return page.status_code == 200 and bool(page.json()["items"])


def payment_journal(admin_db: str) -> dict[str, list[str]]:
    """Application id → the kinds of its payment steps in the ledger's journal (as the admin reads
    it), in journal order."""
    async def read() -> dict[str, list[str]]:
        engine = make_engine(admin_db, "ledger")
        kinds: dict[str, list[str]] = defaultdict(list)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(text(
                    "SELECT application_id, kind FROM journal_entries WHERE kind IN ('posting', 'payment_sent', "
                    "'payment_settled', 'payment_returned', 'payment_failed', 'payment_cancelled') ORDER BY seq"))
                for app_id, kind in rows:
                    kinds[app_id].append(kind)
        finally:
            await engine.dispose()
        return dict(kinds)

    return asyncio.run(read())
