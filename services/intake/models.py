"""Intake's tables, declared once, as its migrations build them (tests/integration/test_intake_models.py
holds the two together). The partners directory, outbox and inbox come with the registry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlmodel import Column, Field, SQLModel

from shared.messaging.records import service_registry

registry = service_registry()


class IntakeTable(SQLModel, registry=registry):
    pass


class Application(IntakeTable, table=True):
    __tablename__ = "applications"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('received','ineligible','approved','partially_approved','rejected','revoked')",
            name="applications_status_known",
        ),
        sa.Index("applications_partner_seq", "partner_id", "seq"),
        sa.Index("applications_status_seq", "status", "seq"),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    # The list's order and its cursor: ids are random.
    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), nullable=False, unique=True))
    partner_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("partners.id"), nullable=False))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    applicant_id: str = Field(sa_column=Column(sa.String(18), nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))
    # A status only moves forward (services.intake.domain.STATUS_RANK).
    status_rank: int = Field(sa_column=Column(sa.SmallInteger, nullable=False, server_default="0"))
    input: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # the application as received
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    announcement: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    updated_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class TimelineEntry(IntakeTable, table=True):
    __tablename__ = "timeline"
    __table_args__ = (sa.Index("timeline_application", "application_id", "recorded_seq"),)

    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))
    application_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("applications.id"), nullable=False))
    type: str = Field(sa_column=Column(sa.Text, nullable=False))
    source: str = Field(sa_column=Column(sa.Text, nullable=False))
    time: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    # Orders entries with the same event time as they were recorded.
    recorded_seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), nullable=False))
    # A consumed downstream event's envelope; NULL for intake's own (in the outbox) and for older rows.
    envelope: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))


class IdempotencyKey(IntakeTable, table=True):
    __tablename__ = "idempotency_keys"

    partner_id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    key: str = Field(sa_column=Column(sa.Text, primary_key=True))
    request_hash: str = Field(sa_column=Column(sa.String(64), nullable=False))
    status_code: int = Field(sa_column=Column(sa.SmallInteger, nullable=False))
    response: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # the first answer, replayed
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
