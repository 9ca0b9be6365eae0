"""What eligibility does with an `application.received` event: assess it, keep the receipt,
and publish `application.assessed` through the outbox."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.domain import assess
from shared.envelope import Event, new_event
from shared.money import parse_amount
from shared.outbox import add_events
from shared.policy.catalog import Catalog, load_catalog
from shared.policy.validation import ApplicationInput

SOURCE = "grantline.eligibility"


def receipt_for(application: ApplicationInput, catalog: Catalog) -> dict[str, Any]:
    return assess(application, catalog).to_receipt()


async def assess_application(session: AsyncSession, event: Event) -> None:
    catalog = load_catalog()
    data = event.data
    for key in ("application_id", "partner_id"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"application.received: data.{key}: must be a string")
    if not isinstance(data.get("application"), dict):
        raise ValueError("application.received: data.application: must be an application object")
    application = ApplicationInput.from_wire(data["application"])
    receipt = receipt_for(application, catalog)
    receipt["application_id"] = data["application_id"]
    receipt["partner_id"] = data["partner_id"]
    receipt["received_at"] = event.time.isoformat()
    stored = await session.scalar(
        text(
            "INSERT INTO assessments (application_id, received_event_id, program, applicant_id, eligible, "
            "entitlement_fen, catalog_version, receipt) VALUES (:a, :e, :p, :ap, :el, :f, :v, CAST(:r AS jsonb)) "
            "ON CONFLICT (application_id) DO NOTHING RETURNING 1"
        ),
        {
            "a": receipt["application_id"],
            "e": event.id,
            "p": application.program,
            "ap": application.applicant_id,
            "el": bool(receipt["eligible"]),
            "f": parse_amount(receipt["entitlement"]),
            "v": receipt["catalog_version"],
            "r": orjson.dumps(receipt).decode(),
        },
    )
    if stored is None:
        # Already assessed under another event id (a re-driven copy): the first receipt stands.
        return
    assessed = new_event(
        "application.assessed",
        source=SOURCE,
        subject=receipt["application_id"],
        data=receipt,
        causation=event,
    )
    await add_events(session, [(assessed, application.applicant_id)])
