"""Feeding notify as the other services do: partners registered by intake, decisions and
revocations published by the ledger."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import PARTNERS
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.kafka import publish
from tests.support.waiting import eventually


@contextlib.asynccontextmanager
async def scratch_schema(settings: Settings, prefix: str = "notify_scratch_") -> AsyncIterator[
        async_sessionmaker[AsyncSession]]:
    """A notify schema of its own, migrated to head, which no running notify instance looks at."""
    schema = prefix + secrets.token_hex(3)
    upgrade(settings.database_url, "notify", schema=schema)
    engine = make_engine(settings.database_url, schema)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def register_partner(
    producer: AIOKafkaProducer, settings: Settings, engine: AsyncEngine, url: str
) -> str:
    """As intake does: a `partner.registered` event; notify keeps a replica of the directory."""
    partner_id = "ptn_" + uuid.uuid4().hex[:20]
    event = new_event(
        "partner.registered",
        source="grantline.intake",
        subject=partner_id,
        data={"partner_id": partner_id, "name": f"partner {partner_id}", "callback_url": url,
              "api_key_hash": secrets.token_hex(32)},
    )
    await publish(producer, settings, PARTNERS, event, partner_id)

    async def known() -> bool:
        async with engine.connect() as conn:
            return bool(await conn.scalar(text("SELECT 1 FROM partners WHERE id = :p"), {"p": partner_id}))

    await eventually(known, what=f"partner {partner_id} in notify's directory")
    return partner_id


def applicant_id() -> str:
    return "91310115MA" + secrets.token_hex(4).upper()


def decided(
    partner_id: str,
    *,
    status: str = "partially_approved",
    awarded: str = "400000.00",
    name: str = "上海某某生物科技有限公司",
    program: str = "GT-EQUITY",
) -> tuple[Event, str]:
    """An `award.decided` as the ledger publishes it, and its key (the applicant)."""
    app_id = "app_" + uuid.uuid4().hex
    applicant = applicant_id()
    data = {
        "application_id": app_id,
        "partner_id": partner_id,
        "program": program,
        "year": 2024,
        "applicant": {"id": applicant, "name": name},
        "subject": f"ROUND-{app_id[-6:]}",
        "status": status,
        "entitlement": "1600000.00",
        "awarded": awarded,
        "limited_by": "GT-EQUITY/beneficiary-year" if status == "partially_approved" else None,
        "reasons": [{"code": "CAP_PARTLY_USED", "message": "cap partly used", "citation": "000 §五(六)"}]
        if status == "partially_approved" else [],
        "top_up_of": None,
        "draws": [{"pool": "GT-EQUITY/beneficiary-year", "amount": awarded}],
        "catalog_version": "test",
    }
    return new_event("award.decided", source="grantline.ledger", subject=app_id, data=data), applicant


def revoked(decision: Event, reason: str = "fraud found") -> Event:
    """The `award.revoked` the ledger publishes when an operator revokes `decision`."""
    d = decision.data
    return new_event(
        "award.revoked",
        source="grantline.ledger",
        subject=d["application_id"],
        causation=decision,
        data={"application_id": d["application_id"], "partner_id": d["partner_id"], "program": d["program"],
              "year": d["year"], "applicant": d["applicant"], "subject": d["subject"], "amount": d["awarded"],
              "reason": reason, "revoked_by": "operator", "revoked_at": "2024-06-01T00:00:00+00:00"},
    )
