"""The payee's SQL: the application locked for a change of payee, the new payee, the event's
timeline entry (its envelope is the outbox row's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text

from shared.contracts.envelope import Event
from shared.messaging.outbox import PublishingRepository


@dataclass(frozen=True)
class PayeeTarget:
    """What a change of payee needs to know of its application, read under its row lock."""

    applicant_id: str
    payee: dict[str, Any] | None
    payment: dict[str, Any] | None


class PayeeRepository(PublishingRepository):
    async def lock_application(self, app_id: str, partner_id: str) -> PayeeTarget | None:
        """The partner's application, locked (the status projection writes `payment` under the
        same lock, so a step consumed meanwhile is seen or waits); None when not the partner's."""
        row = (
            await self.session.execute(
                text(
                    "SELECT applicant_id, payee, payment FROM applications "
                    "WHERE id = :id AND partner_id = :p FOR UPDATE"
                ),
                {"id": app_id, "p": partner_id},
            )
        ).first()
        return PayeeTarget(row.applicant_id, row.payee, row.payment) if row else None

    async def set_payee(self, app_id: str, payee: dict[str, str]) -> None:
        await self.session.execute(
            text("UPDATE applications SET payee = CAST(:payee AS jsonb), updated_at = now() WHERE id = :id"),
            {"id": app_id, "payee": orjson.dumps(payee).decode()},
        )

    async def add_own_timeline_entry(self, app_id: str, event: Event) -> None:
        """One of intake's own events in the application's timeline (its envelope is in the outbox)."""
        await self.session.execute(
            text(
                "INSERT INTO timeline (event_id, application_id, type, source, time) "
                "VALUES (CAST(:e AS uuid), :a, :t, :s, :tm)"
            ),
            {"e": str(event.id), "a": app_id, "t": event.type, "s": event.source, "tm": event.time},
        )
