"""What the operators' delivery routes take and answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from shared.web.openapi import NO_NUL

DeliveryId = Annotated[str, Path(max_length=100, pattern=NO_NUL)]
DeliveryStatus = Annotated[
    Literal["pending", "delivered", "parked"] | None, Query(description="pending, delivered or parked")
]
FilterText = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
DeliveryLimit = Annotated[int, Query(ge=1, le=500)]


class DeliveryAttempt(BaseModel):
    attempt: int
    at: str | None
    url: str | None
    outcome: Literal["delivered", "failed", "refused"]
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRedrive(BaseModel):
    by: str
    by_name: str | None = Field(description="the staff member's name; null for the bootstrap operator")
    at: str | None
    previous_status: str


class DeliveryView(BaseModel):
    """A webhook delivery with every attempt and every re-drive, in order."""

    id: str
    event_id: str
    event_type: str
    application_id: str
    partner_id: str
    status: Literal["pending", "delivered", "parked"]
    attempt_count: int
    next_attempt_at: str | None  # only while pending
    last_status_code: int | None
    last_error: str | None
    created_at: str | None
    delivered_at: str | None
    parked_at: str | None
    redriven_by: str | None
    redriven_at: str | None
    attempts: list[DeliveryAttempt]
    redrives: list[DeliveryRedrive]


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None  # null on the last page
