"""The dispatcher's pure logic: the webhook retry schedule and what one attempt leads to.

The schedule is a policy of its own (CONTRACT.md, Notify: exponential backoff from
`webhook_backoff_seconds`, parked after `webhook_attempts_max`), written once here; it is not
the waiting of a worker for its database to come back (shared.kernel.retry.Backoff)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


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


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds (its claim token) until the outcome is recorded."""

    id: str
    event_id: str
    partner_id: str
    body: str
    attempts: int
    round_attempts: int
    token: uuid.UUID
    callback_url: str | None  # read with the claim: one query per batch, not one per delivery


@dataclass(frozen=True)
class SendResult:
    outcome: str  # delivered | failed | refused
    url: str | None
    status_code: int | None
    error: str | None
    started_at: datetime
    duration_ms: int
