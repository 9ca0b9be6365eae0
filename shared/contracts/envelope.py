"""The one event envelope (CloudEvents attribute names), used by every topic.

The Kafka key is the applicant id so that one applicant's events stay in order on one
partition; it travels beside the envelope, not inside it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID
    type: str = Field(min_length=1)
    source: str = Field(min_length=1)
    time: datetime
    subject: str
    data_version: int = 1
    correlation_id: str
    causation_id: str | None = None
    data: dict[str, Any]

    def to_json(self) -> str:
        # pydantic writes JSON directly, without building the intermediate dict of to_wire().
        return self.model_dump_json()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PoisonEvent(ValueError):
    """A message that cannot be read as an envelope: it goes to the dead-letter topic."""


def new_event(
    type: str,
    *,
    source: str,
    subject: str,
    data: dict[str, Any],
    correlation_id: str | None = None,
    causation: Event | None = None,
    time: datetime | None = None,
    data_version: int = 1,
) -> Event:
    event_id = uuid.uuid4()
    return Event(
        id=event_id,
        type=type,
        source=source,
        time=time or datetime.now(UTC),
        subject=subject,
        data_version=data_version,
        correlation_id=correlation_id or (causation.correlation_id if causation else str(event_id)),
        causation_id=str(causation.id) if causation else None,
        data=data,
    )


def parse_event(raw: bytes | None) -> Event:
    if raw is None:
        raise PoisonEvent("empty message (tombstone)")
    try:
        return Event.model_validate_json(raw)
    except ValidationError as exc:
        raise PoisonEvent(f"not a Grantline event envelope: {exc.errors()[:3]}") from exc
