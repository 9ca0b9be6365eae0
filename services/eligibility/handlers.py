"""What eligibility does with an `application.received` event: assess it, keep the receipt,
and publish `application.assessed` through the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.domain import assess
from shared.contracts.envelope import Event, new_event
from shared.kernel.money import parse_amount
from shared.messaging.consumer import DeadLetter
from shared.messaging.outbox import add_events
from shared.policy.catalog import Catalog, load_catalog
from shared.policy.validation import ApplicationInput

SOURCE = "grantline.eligibility"


def receipt_for(application: ApplicationInput, catalog: Catalog) -> dict[str, Any]:
    return assess(application, catalog).to_receipt()


@dataclass(frozen=True)
class Assessed:
    """One application.received event, assessed in memory: the row to keep and the event to publish."""

    event: Event
    application: ApplicationInput
    receipt: dict[str, Any]

    def row(self) -> dict[str, Any]:
        r = self.receipt
        return {
            "a": r["application_id"],
            "e": self.event.id,
            "p": self.application.program,
            "ap": self.application.applicant_id,
            "el": bool(r["eligible"]),
            "f": parse_amount(r["entitlement"]),
            "v": r["catalog_version"],
            "r": orjson.dumps(r).decode(),
        }

    def assessed_event(self) -> tuple[Event, str]:
        event = new_event("application.assessed", source=SOURCE, subject=self.receipt["application_id"],
                          data=self.receipt, causation=self.event)
        return event, self.application.applicant_id


def assess_event(event: Event, catalog: Catalog) -> Assessed:
    """ValueError when the event does not carry an application to assess."""
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
    return Assessed(event, application, receipt)


# ON CONFLICT: an application already assessed under another event id (a re-driven copy) keeps its
# first receipt, and only the rows stored here are published.
_STORE_MANY = text(
    "INSERT INTO assessments (application_id, received_event_id, program, applicant_id, eligible, "
    "entitlement_fen, catalog_version, receipt) "
    "SELECT a, e, p, ap, el, f, v, CAST(r AS jsonb) FROM unnest("
    "CAST(:a AS text[]), CAST(:e AS uuid[]), CAST(:p AS text[]), CAST(:ap AS text[]), CAST(:el AS boolean[]), "
    "CAST(:f AS bigint[]), CAST(:v AS text[]), CAST(:r AS text[])) AS u(a, e, p, ap, el, f, v, r) "
    "ON CONFLICT (application_id) DO NOTHING RETURNING application_id"
)


async def assess_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """A partition's batch in two statements: the receipts, then their events."""
    catalog = load_catalog()
    batch: dict[str, Assessed] = {}
    for event in events:
        try:
            assessed = assess_event(event, catalog)
        except ValueError as exc:
            dead_letter(event, exc)
            continue
        # Two copies of one application in a batch: the first stands, as across batches.
        batch.setdefault(assessed.receipt["application_id"], assessed)
    if not batch:
        return
    rows = [a.row() for a in batch.values()]
    columns = {k: [r[k] for r in rows] for k in ("a", "p", "ap", "el", "f", "v", "r")}
    columns["e"] = [str(r["e"]) for r in rows]
    stored = set((await session.scalars(_STORE_MANY, columns)).all())
    await add_events(session, [a.assessed_event() for app_id, a in batch.items() if app_id in stored])
