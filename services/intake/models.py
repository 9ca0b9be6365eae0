"""Intake's tables, declared once, as its migrations build them (tests/integration/test_intake_models.py
holds the two together). The partners directory, outbox and inbox come with the registry; the
catalog versions and calls are intake's replica of grantline.policy (services.intake.policy)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
            "status IN ('received','ineligible','pending_review','approved','partially_approved','rejected',"
            "'revoked')",
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
    # Objection id -> open/upheld/dismissed (ids only, never who objected): announcement.objections_open.
    objections: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"))
    )
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    updated_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    # The call it was received under; NULL for applications from before calls.
    call_id: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    # Where an award is paid, in full ({account_name, account_number, bank_code}); NULL until given.
    # Answers show the number masked but to payment officers (services.intake.payees).
    payee: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # The `payment` block projected from grantline.payments; NULL until an order exists.
    payment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))


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


class CatalogVersion(IntakeTable, table=True):
    """A published catalog version (catalog.published), kept as published: versions are immutable."""

    __tablename__ = "catalog_versions"

    version: str = Field(sa_column=Column(sa.Text, primary_key=True))
    document: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))  # json: its keys in order
    published_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))


class Call(IntakeTable, table=True):
    """A call for applications (call.opened), with its end moved when it is closed (call.closed)."""

    __tablename__ = "calls"
    __table_args__ = (sa.Index("calls_program_year", "program", "year"),)

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    title: str = Field(sa_column=Column(sa.Text, nullable=False))
    opens_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    # Moved to the moment of closing when a call is closed early (possibly before opens_at).
    closes_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    event_from: date = Field(sa_column=Column(sa.Date, nullable=False))
    event_to: date = Field(sa_column=Column(sa.Date, nullable=False))
    # No foreign key: call.opened and catalog.published travel on different partitions.
    catalog_version: str = Field(sa_column=Column(sa.Text, nullable=False))
    budget_fen: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True), nullable=True))
    close_reason: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
