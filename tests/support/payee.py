"""Payees and payment steps in tests: a payee body, the ledger's `payment.*` events as it
publishes them on grantline.payments, and looking for an account number where it must not be."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.contracts.envelope import Event, new_event


def account_number(digits: int = 20) -> str:
    """A random account number, so a test's search for it finds only its own."""
    return "6" + "".join(str(secrets.randbelow(10)) for _ in range(digits - 1))


def payee(number: str | None = None, **over: Any) -> dict[str, Any]:
    """A well-formed payee (CONTRACT.md's example with a random account number)."""
    body: dict[str, Any] = {"account_name": "上海某某生物科技有限公司",
                            "account_number": number or account_number(), "bank_code": "105290061012"}
    body.update(over)
    return body


def masked(number: str) -> str:
    return "****" + number[-4:]


def payment_step(
    event_type: str,
    *,
    application_id: str,
    partner_id: str | None,
    applicant_id: str,
    order_id: str,
    status: str,
    amount: str = "400000.00",
    batch_id: str | None = None,
    masked_account: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
    causation: Event | None = None,
) -> Event:
    """A `payment.*` event as the ledger publishes it (key: the applicant)."""
    when = at or datetime.now(UTC)
    data: dict[str, Any] = {"order_id": order_id, "application_id": application_id, "partner_id": partner_id,
                            "applicant_id": applicant_id, "amount": amount, "status": status,
                            "at": when.isoformat()}
    # The optional keys are left out when there is nothing to say (never null on the wire).
    if batch_id is not None:
        data["batch_id"] = batch_id
    if masked_account is not None:
        data["masked_account"] = masked_account
    if reason_code is not None:
        data["reason_code"], data["reason"] = reason_code, reason
    return new_event(event_type, source="grantline.ledger", subject=application_id, time=when, causation=causation,
                     data=data)


def order_id() -> str:
    return "pay_" + uuid.uuid4().hex[:20]


def records_holding(records: Iterable[logging.LogRecord], needle: str) -> list[str]:
    """The log records (as everything they hold: message, arguments, extras, exception text) in
    which `needle` appears."""
    found = []
    for record in records:
        text = f"{record.getMessage()} {record.__dict__!r}"
        if record.exc_info:
            text += repr(record.exc_info[1])
        if needle in text:
            found.append(record.getMessage()[:200])
    return found
