"""Notify's pure logic: webhook bodies and signatures, the retry schedule, which awards are
announced (公示), and the public view of an announcement. No I/O, no clock of its own."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson

from shared.kernel.money import AmountError, format_fen, parse_amount

WEBHOOK_TYPES = frozenset({"award.decided", "award.revoked", "award.finalized"})
ANNOUNCED_STATUSES = frozenset({"approved", "partially_approved"})
SIGNATURE_HEADER = "Grantline-Signature"
EVENT_ID_HEADER = "Grantline-Event-Id"

_SIGNATURE = re.compile(r"^t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})$")


# --- webhooks -----------------------------------------------------------------------------


def webhook_body(event_id: str, event_type: str, application_id: str, data: dict[str, Any]) -> bytes:
    """The JSON POSTed to the partner: the event id lets the partner dedupe redeliveries."""
    return orjson.dumps({"id": event_id, "type": event_type, "application_id": application_id, "data": data})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<t>.<raw body>" with the partner's webhook secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`Grantline-Signature: t=<unix>,v1=<hex>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """What a partner does with a delivery (and what the tests do): constant-time compare,
    and refuse stale timestamps so a captured request cannot be replayed later."""
    match = _SIGNATURE.match(header.strip())
    if match is None:
        return False
    timestamp = int(match["t"])
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(match["v1"], signature(secret, timestamp, body))


def backoff_delay(attempts_made: int, first_delay: float) -> float:
    """Seconds to wait after the `attempts_made`-th failed attempt: first, 2×first, 4×first, ..."""
    if attempts_made < 1:
        raise ValueError("attempts_made counts from 1")
    return float(first_delay) * (2 ** (attempts_made - 1))


def backoff_schedule(first_delay: float, max_attempts: int) -> list[float]:
    """The waits between consecutive attempts (max_attempts - 1 of them)."""
    return [backoff_delay(n, first_delay) for n in range(1, max_attempts)]


@dataclass(frozen=True)
class AttemptOutcome:
    """What to record after one attempt, given how many attempts (this round) it makes."""

    status: Literal["pending", "delivered", "parked"]
    retry_in: float | None  # seconds, when status is pending


def after_attempt(*, ok: bool, round_attempts: int, max_attempts: int, first_delay: float) -> AttemptOutcome:
    if ok:
        return AttemptOutcome("delivered", None)
    if round_attempts >= max_attempts:
        return AttemptOutcome("parked", None)
    return AttemptOutcome("pending", backoff_delay(round_attempts, first_delay))


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


# --- 公示 ------------------------------------------------------------------------------------


def awarded_fen(data: dict[str, Any]) -> int:
    try:
        return parse_amount(data.get("awarded"))
    except AmountError:
        return 0


def should_announce(data: dict[str, Any]) -> bool:
    """Approved and partially approved awards with something awarded go on public notice."""
    return data.get("status") in ANNOUNCED_STATUSES and awarded_fen(data) > 0


def notice_ends(published_at: datetime, notice_period_s: int) -> datetime:
    return published_at + timedelta(seconds=notice_period_s)


def published_data(
    decided: dict[str, Any], *, published_at: datetime, notice_ends_at: datetime
) -> dict[str, Any]:
    """`announcement.published` data."""
    applicant = decided.get("applicant") or {}
    return {
        "application_id": decided["application_id"],
        "partner_id": decided["partner_id"],
        "program": decided["program"],
        "year": decided["year"],
        "applicant_name": applicant.get("name", ""),
        "subject": decided["subject"],
        "amount": format_fen(awarded_fen(decided)),
        "published_at": published_at.isoformat(),
        "notice_ends_at": notice_ends_at.isoformat(),
    }


def finalized_data(
    *,
    application_id: str,
    partner_id: str,
    program: str,
    year: int,
    subject: str,
    amount_fen: int,
    finalized_at: datetime,
) -> dict[str, Any]:
    """`award.finalized` data."""
    return {
        "application_id": application_id,
        "partner_id": partner_id,
        "program": program,
        "year": year,
        "subject": subject,
        "amount": format_fen(amount_fen),
        "finalized_at": finalized_at.isoformat(),
    }


def announcement_status(finalized_at: datetime | None) -> Literal["under_notice", "final"]:
    return "final" if finalized_at is not None else "under_notice"


def public_announcement(
    *,
    applicant_name: str,
    program: str,
    year: int,
    subject: str,
    amount_fen: int,
    published_at: datetime,
    notice_ends_at: datetime,
    finalized_at: datetime | None,
) -> dict[str, Any]:
    """What the public may see: no internal ids, no partner, no contact data."""
    return {
        "applicant_name": applicant_name,
        "program": program,
        "year": year,
        "subject": subject,
        "amount": format_fen(amount_fen),
        "published_at": published_at.isoformat(),
        "notice_ends_at": notice_ends_at.isoformat(),
        "finalized_at": finalized_at.isoformat() if finalized_at else None,
        "status": announcement_status(finalized_at),
    }
