"""Eligibility's tables, declared once, as its migrations build them
(tests/integration/test_eligibility_models.py holds the two together). The partner directory
replica, outbox and inbox come with the registry.

The receipts are eligibility's record of what it decided; the catalog versions and calls are
the policy it decides under, and the source of truth for every other service's replica of it
(their `catalog.published`, `call.opened` and `call.closed` events stay in the outbox)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID, ExcludeConstraint
from sqlmodel import Column, Field, SQLModel

from shared.messaging.records import service_registry

registry = service_registry()


class EligibilityTable(SQLModel, registry=registry):
    pass


class Assessment(EligibilityTable, table=True):
    """One receipt per application: the first assessment stands (a re-driven copy adds nothing)."""

    __tablename__ = "assessments"
    __table_args__ = (sa.CheckConstraint("entitlement_fen >= 0", name="assessments_entitlement_non_negative"),)

    application_id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    received_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    applicant_id: str = Field(sa_column=Column(sa.String(18), nullable=False))
    eligible: bool = Field(sa_column=Column(sa.Boolean, nullable=False))
    entitlement_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    catalog_version: str = Field(sa_column=Column(sa.Text, nullable=False))
    receipt: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    assessed_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class CatalogVersion(EligibilityTable, table=True):
    """A published catalog document, content-addressed (`sha256:` of its canonical JSON) and kept
    forever; the latest is the one with the highest `seq`."""

    __tablename__ = "catalog_versions"
    __table_args__ = (
        sa.CheckConstraint("version ~ '^sha256:[0-9a-f]{64}$'", name="catalog_versions_content_address"),
    )

    version: str = Field(sa_column=Column(sa.Text, primary_key=True))
    # json, not jsonb: served back exactly as published (jsonb would reorder its keys).
    document: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))
    note: str | None = Field(default=None, sa_column=Column(sa.Text))
    published_by: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    published_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), nullable=False, unique=True))


class Call(EligibilityTable, table=True):
    """A call for applications (申报批次): one program and support year, open from `opens_at`
    (included) to `closes_at` (excluded; moved to the moment of closing when closed early),
    under the catalog version it pins."""

    __tablename__ = "calls"
    __table_args__ = (
        # Equal only when closed before it opened: an empty range, which admits nothing.
        sa.CheckConstraint("closes_at >= opens_at", name="calls_closes_after_opening"),
        sa.CheckConstraint("event_to >= event_from", name="calls_event_window_ordered"),
        sa.CheckConstraint("budget_fen IS NULL OR budget_fen > 0", name="calls_budget_positive"),
        sa.CheckConstraint(
            "(closed_at IS NULL) = (closed_by IS NULL) AND (closed_at IS NULL) = (close_reason IS NULL)",
            name="calls_closed_with_who_and_why",
        ),
        # No two calls for one program and year open at the same moment, whoever opens them at
        # once (btree_gist gives gist the equality on text and integer).
        ExcludeConstraint(
            (sa.column("program"), "="),
            (sa.column("year"), "="),
            (sa.func.tstzrange(sa.column("opens_at"), sa.column("closes_at")), "&&"),
            name="calls_no_overlap",
            using="gist",
        ),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), nullable=False, unique=True))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    title: str = Field(sa_column=Column(sa.Text, nullable=False))
    opens_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    closes_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    event_from: date = Field(sa_column=Column(sa.Date, nullable=False))
    event_to: date = Field(sa_column=Column(sa.Date, nullable=False))
    catalog_version: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("catalog_versions.version"), nullable=False)
    )
    budget_fen: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    opened_by: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    opened_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    closed_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    closed_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True)))
    close_reason: str | None = Field(default=None, sa_column=Column(sa.Text))
