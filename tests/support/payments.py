"""Payments in tests: the events the ledger's payment consumers take (payee on receipt, payee
updated, award finalized), their consumer loops, and the official XSDs the documents are held to
(shipped by the `pain001` and `camt053` packages; found without importing them)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiokafka import AIOKafkaProducer
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import finalized_subscription, payees_subscription
from services.ledger.payments import documents
from services.ledger.payments.domain import BatchItem, Payer
from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import AwardFinalized, Payee, PayeeUpdated, new_typed_event
from shared.contracts.topics import APPLICATIONS
from shared.messaging.consumer import ConsumerLoop
from shared.messaging.outbox import add_events
from tests.support.ledger import T0


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
