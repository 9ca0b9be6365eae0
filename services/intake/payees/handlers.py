"""Replacing an application's payee: one transaction with its `payee.updated` event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.intake.domain import SOURCE
from services.intake.payees.domain import MONEY_LEFT, Payee, masked
from services.intake.payees.repository import PayeeRepository
from shared.contracts.events import Payee as PayeeData
from shared.contracts.events import PayeeUpdated, new_typed_event
from shared.kernel.errors import Conflict, NotFound


async def replace_payee(
    repo: PayeeRepository,
    app_id: str,
    *,
    partner_id: str,
    payee: Payee,
    now: datetime,
    correlation: str | None,
) -> dict[str, Any]:
    """The partner's application gets `payee`, and `payee.updated` (the full number, for the
    ledger) goes into the outbox with it. 404 for an application that is not the partner's;
    409 once its payment is sent or settled. The same payee again changes and publishes nothing."""
    target = await repo.lock_application(app_id, partner_id)
    if target is None:
        raise NotFound(f"no application {app_id!r} visible to you")
    status = (target.payment or {}).get("status")
    if status in MONEY_LEFT:
        raise Conflict(
            f"the payment of {app_id} is {status}: the money has left, so the payee can no longer change"
        )
    wire = payee.to_wire()
    if target.payee == wire:
        return {"application_id": app_id, "payee": masked(wire), "updated_at": now.isoformat(), "changed": False}
    event = new_typed_event(
        PayeeUpdated(application_id=app_id, partner_id=partner_id, applicant_id=target.applicant_id,
                     payee=PayeeData.model_validate(wire), updated_at=now.isoformat()),
        source=SOURCE, subject=app_id, correlation_id=correlation, time=now,
    )
    await repo.set_payee(app_id, wire)
    await repo.add_own_timeline_entry(app_id, event)
    await repo.add_events([(event, target.applicant_id)])
    return {"application_id": app_id, "payee": masked(wire), "updated_at": now.isoformat(), "changed": True}
