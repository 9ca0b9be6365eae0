"""One accepted application's rows, ready to write: a value, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Submission:
    """One application's rows, ready to write (every JSON value already serialised). Its outbox
    row is the `application.received` event under the applicant's key, about the application:
    `event_id`, `topic`, `applicant_id`, `event_type`, `app_id`, `envelope`."""

    partner_id: str
    idempotency_key: str
    fingerprint: str
    response: str  # the stored 202 reply, JSON
    app_id: str
    program: str
    year: int
    applicant_id: str
    subject: str
    call_id: str  # the call it is received under
    input: str  # the application as received, JSON
    event_id: str
    event_type: str
    source: str
    time: datetime
    topic: str
    envelope: str  # JSON
    payee: str | None = None  # JSON, in full; None when the partner gave none
