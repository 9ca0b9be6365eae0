"""Eligibility's tables, declared once, as its migrations build them
(tests/integration/test_eligibility_models.py holds the two together). The partner directory
replica, outbox and inbox come with the registry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
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
