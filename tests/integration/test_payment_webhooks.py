"""Notify's webhooks for payment steps (CONTRACT.md, "Notify": every payment status change is
POSTed to the owning partner), over a real broker, PostgreSQL and an HTTP receiver on loopback:
one signed webhook per `payment.*` event with the data as the ledger sent it, never an account
number in full, nothing to another partner, and a step notify cannot deliver dead-lettered."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.app import create_app
from services.notify.domain import verify_signature
from shared.config.settings import Settings
from shared.contracts.topics import PAYMENTS
from shared.web.auth import webhook_secret_for
from tests.support.apps import running
from tests.support.notify import applicant_id, register_partner
from tests.support.payee import account_number, masked, order_id, payment_step
from tests.support.receiver import Received, scripted_receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

STEPS = [  # (type, the order's status after it, batch, bank reason)
    ("payment.ordered", "ready", None, None),
    ("payment.sent", "sent", "bat_w1", None),
    ("payment.failed", "failed", "bat_w1", ("AC01", "账号不正确")),
    ("payment.settled", "settled", "bat_w1", None),
    ("payment.returned", "awaiting_payee", None, ("AC04", "账户已销户")),
]


@pytest.fixture(scope="module")
async def notify(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    s = settings.model_copy(update={"allow_private_callbacks": True, "webhook_backoff_seconds": 0.05})
    async with running(create_app(s)) as client:
        yield client


def signed_by(request: Received, partner_id: str, settings: Settings) -> bool:
    secret = webhook_secret_for(partner_id, settings.webhook_signing_key)
    return verify_signature(secret, request.headers["grantline-signature"], request.body, now=int(time.time()))


async def test_a_signed_webhook_per_payment_step_to_the_owning_partner_only(
    notify: httpx.AsyncClient, settings: Settings, producer: AIOKafkaProducer, notify_db: AsyncEngine
) -> None:
    async with scripted_receiver() as hook, scripted_receiver() as bystander:
        partner = await register_partner(producer, settings, notify_db, hook.url)
        await register_partner(producer, settings, notify_db, bystander.url)
        applicant, app_id, order = applicant_id(), "app_" + uuid.uuid4().hex, order_id()
        number = account_number()
        t0 = datetime.now(UTC)

        # First, on the same partition: a step without its partner (notify cannot deliver it:
        # dead-lettered) and one whose publisher left the account number in full.
        orphan = payment_step("payment.ordered", application_id=app_id, partner_id=None, applicant_id=applicant,
                              order_id=order_id(), status="ready", at=t0)
        unmasked = payment_step("payment.ordered", application_id=app_id, partner_id=partner,
                                applicant_id=applicant, order_id=order_id(), status="ready",
                                masked_account=number, at=t0)
        events = [orphan, unmasked]
        for i, (kind, status, batch, reason) in enumerate(STEPS):
            events.append(payment_step(
                kind, application_id=app_id, partner_id=partner, applicant_id=applicant, order_id=order,
                status=status, batch_id=batch, masked_account=masked(number),
                reason_code=reason[0] if reason else None, reason=reason[1] if reason else None,
                at=t0 + timedelta(seconds=i + 1)))
        for event in events:
            await producer.send_and_wait(settings.topic_namespace + PAYMENTS, event.to_bytes(),
                                         key=applicant.encode())

        async def all_steps() -> list[Received]:
            return hook.requests

        got = await eventually(all_steps, "a webhook per payment step", until=lambda r: len(r) >= len(STEPS) + 1)
        by_id = {r.json["id"]: r for r in got}
        assert len(by_id) == len(STEPS) + 1
        for event in events[2:]:
            request = by_id[str(event.id)]
            assert signed_by(request, partner, settings)
            assert request.headers["grantline-event-id"] == str(event.id)
            assert request.json == {"id": str(event.id), "type": event.type, "application_id": app_id,
                                    "data": event.data}
        assert [by_id[str(e.id)].json["data"]["status"] for e in events[2:]] == [s for _, s, _, _ in STEPS]
        assert by_id[str(events[4].id)].json["data"]["reason_code"] == "AC01"
        # The account number, masked by the ledger or not, never leaves notify in full.
        assert by_id[str(unmasked.id)].json["data"]["masked_account"] == masked(number)
        for request in got:
            assert number.encode() not in request.body
        async with notify_db.connect() as conn:
            stored = await conn.scalar(text("SELECT count(*) FROM deliveries WHERE body LIKE :n"), {"n": f"%{number}%"})
            orphan_rows = await conn.scalar(text("SELECT count(*) FROM deliveries WHERE event_id = :e"),
                                            {"e": orphan.id})
            dead = (await conn.execute(text(
                "SELECT envelope FROM outbox WHERE type = 'event.dead_lettered' AND envelope::text LIKE :e"),
                {"e": f"%{orphan.id}%"})).scalars().all()
        assert stored == 0
        assert orphan_rows == 0 and len(dead) == 1, "the step without a partner is dead-lettered, not dropped"
        assert "partner_id" in orjson.dumps(dead[0]).decode()
        assert bystander.requests == [], "another partner hears nothing of it"
