"""Eligibility from a test's side: a successor catalog document an admin would publish, an
`application.received` as intake sends it, and eligibility's own rows (receipts, policy tables,
outbox)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.events import ApplicationReceived, new_typed_event
from shared.contracts.topics import APPLICATIONS
from shared.db.engine import make_engine
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from tests.support.kafka import publish
from tests.support.policy import shipped_document
from tools.samples import make_body

SUCCESSOR_CITATION = "2026 §三(二)"


def successor_document(revision: int = 2026) -> dict[str, Any]:
    """The shipped catalog with GT-EQUITY succeeded by a 2026 policy: events and support year
    2026, financing of 3000万 or more (was 5000万), 3% of it (was 2%), each rule citing the new
    document. Another `revision` gives another document (another version) with the same rules."""
    document = copy.deepcopy(shipped_document())
    document["revision"] = revision
    equity = next(p for p in document["programs"] if p["code"] == "GT-EQUITY")
    equity["citation"] = SUCCESSOR_CITATION
    equity["window"] = {
        "event_date": {"start": "2026-01-01", "end": "2026-12-31"},
        "years": {"first": 2026, "last": 2026},
        "citation": "2026 标题（2026年度）",
        "text": "2026年度基因治疗企业股权融资资助（继任政策）",
    }
    [threshold] = equity["rules"]
    threshold.update(min="30000000.00", citation=SUCCESSOR_CITATION, text="成功引入股权融资3000万元以上")
    equity["formula"].update(rate_bp=300, citation=SUCCESSOR_CITATION, text="按照实际获得股权融资额给予不超过3%的资助")
    for pool in equity["pools"]:
        pool["citation"] = SUCCESSOR_CITATION
    return document


def equity_2026_body(financing: str = "40000000.00") -> dict[str, Any]:
    """A GT-EQUITY application for 2026: below the old threshold, above the successor's."""
    body = make_body("GT-EQUITY")
    body["year"] = 2026
    body["facts"] = {"event_date": "2026-05-01", "financing_received": financing}
    return body


def application_received(app_id: str, body: dict[str, Any], call_id: str, time: datetime | None = None) -> Event:
    """`application.received` as intake publishes it (the body checked against the shipped
    catalog's field types), under `call_id`, received at `time` (default now)."""
    application, errors = validate_application(body, load_catalog())
    assert application is not None, errors
    data = {"application_id": app_id, "partner_id": "ptn_tests", "application": application.to_wire(), "call_id": call_id}
    return new_typed_event(ApplicationReceived.model_validate(data), source="grantline.intake", subject=app_id,
                           time=time)


async def send_received(settings: Settings, *events: Event) -> None:
    """Events on the settings' namespaced grantline.applications, keyed by applicant as intake keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            await publish(producer, settings, APPLICATIONS, event, key=event.data["application"]["applicant"]["id"])
    finally:
        await producer.stop()


@asynccontextmanager
async def eligibility_db(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """A connection to eligibility's schema, for reading what it stored."""
    engine = make_engine(settings.database_url, "eligibility", pool_size=1)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def outbox_events(conn: AsyncConnection, event_type: str) -> list[dict[str, Any]]:
    """The envelopes of `event_type` in eligibility's outbox, oldest first, with their key."""
    rows = await conn.execute(
        text("SELECT envelope, key FROM outbox WHERE type = :t ORDER BY seq"), {"t": event_type}
    )
    return [{**row.envelope, "key": row.key} for row in rows]


async def receipt(conn: AsyncConnection, app_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await conn.scalar(
        text("SELECT receipt FROM assessments WHERE application_id = :a"), {"a": app_id}
    )
    return found
