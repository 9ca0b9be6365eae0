"""Notify's tables, declared once: webhook deliveries with their attempts and re-drives, the
announcements (公示) and the objections (异议) to them. The migrations build exactly these (tests/integration/test_notify_models.py);
the shared tables (outbox, inbox, partners, relay offsets, re-drives) come with the registry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlmodel import Column, Field, SQLModel

from shared.messaging.records import service_registry

registry = service_registry()


class NotifyTable(SQLModel, registry=registry):
    pass


def _at(*, nullable: bool = True, now: bool = False) -> Column[datetime]:
    return Column(sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None)


class DeliveryRecord(NotifyTable, table=True):
    """One row per (event, partner): the consumer inserts it, the dispatcher works it off."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "partner_id", name="deliveries_event_partner"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'parked')", name="deliveries_status_known"),
        sa.Index("deliveries_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
        sa.Index("deliveries_application", "application_id", "created_at"),
        sa.Index("deliveries_status", "status", "created_at"),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False))
    event_type: str = Field(sa_column=Column(sa.Text, nullable=False))
    application_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    partner_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    # The exact bytes that are signed and sent, the same on every attempt.
    body: str = Field(sa_column=Column(sa.Text, nullable=False))
    status: str = Field(sa_column=Column(sa.Text, nullable=False, server_default="pending"))
    attempts: int = Field(sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    # Attempts since the last re-drive: the delivery parks when this reaches the maximum.
    round_attempts: int = Field(sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime = Field(sa_column=_at(nullable=False, now=True))
    # Set while a dispatcher is sending; the outcome is recorded only by the holder.
    claim_token: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True)))
    last_status_code: int | None = Field(default=None, sa_column=Column(sa.Integer))
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text))
    created_at: datetime = Field(sa_column=_at(nullable=False, now=True))
    updated_at: datetime = Field(sa_column=_at(nullable=False, now=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_at())
    parked_at: datetime | None = Field(default=None, sa_column=_at())
    redriven_by: str | None = Field(default=None, sa_column=Column(sa.Text))
    redriven_at: datetime | None = Field(default=None, sa_column=_at())


class DeliveryAttemptRecord(NotifyTable, table=True):
    __tablename__ = "delivery_attempts"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "attempt", name="delivery_attempts_once"),)

    id: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), primary_key=True))
    delivery_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("deliveries.id"), nullable=False))
    attempt: int = Field(sa_column=Column(sa.Integer, nullable=False))
    url: str | None = Field(default=None, sa_column=Column(sa.Text))
    started_at: datetime = Field(sa_column=_at(nullable=False))
    duration_ms: int = Field(sa_column=Column(sa.Integer, nullable=False))
    outcome: str = Field(sa_column=Column(sa.Text, nullable=False))  # delivered | failed | refused
    status_code: int | None = Field(default=None, sa_column=Column(sa.Integer))
    error: str | None = Field(default=None, sa_column=Column(sa.Text))


class DeliveryRedriveRecord(NotifyTable, table=True):
    __tablename__ = "delivery_redrives"
    __table_args__ = (sa.Index("delivery_redrives_delivery", "delivery_id"),)

    id: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), primary_key=True))
    delivery_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("deliveries.id"), nullable=False))
    redriven_by: str = Field(sa_column=Column(sa.Text, nullable=False))
    redriven_at: datetime = Field(sa_column=_at(nullable=False, now=True))
    previous_status: str = Field(sa_column=Column(sa.Text, nullable=False))


class AnnouncementRecord(NotifyTable, table=True):
    """公示: one announcement per approved application."""

    __tablename__ = "announcements"
    __table_args__ = (
        sa.UniqueConstraint("id", name="announcements_id_unique"),
        sa.CheckConstraint("amount_fen > 0", name="announcements_amount_positive"),
        sa.CheckConstraint("objections_open >= 0", name="announcements_objections_open_counted"),
        sa.CheckConstraint("objections_upheld >= 0", name="announcements_objections_upheld_counted"),
        sa.CheckConstraint("notice_ends_at >= published_at", name="announcements_notice_order"),
        sa.CheckConstraint(
            "finalized_at IS NULL OR finalized_event_id IS NOT NULL", name="announcements_finalized_has_event"
        ),
        sa.Index(
            "announcements_due",
            "notice_ends_at",
            postgresql_where=sa.text("finalized_at IS NULL AND withdrawn_at IS NULL"),
        ),
        sa.Index("announcements_listing", "year", "program", "published_at"),
        # The 公示 page's order (groups by program and call, newest first within): a backward scan.
        # No call (history from before calls were carried) is '' there, so a page can start after
        # such a row with a row comparison.
        sa.Index("announcements_by_call", "year", "program", sa.text("coalesce(call_id, '')"), "published_at"),
    )

    application_id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    # The event that approved the award: award.decided (auto) or award.reviewed.
    decided_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    correlation_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    partner_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    applicant_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    applicant_name: str = Field(sa_column=Column(sa.Text, nullable=False))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    amount_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    published_at: datetime = Field(sa_column=_at(nullable=False))
    notice_ends_at: datetime = Field(sa_column=_at(nullable=False))
    published_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    finalized_at: datetime | None = Field(default=None, sa_column=_at())
    finalized_event_id: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True), unique=True))
    withdrawn_at: datetime | None = Field(default=None, sa_column=_at())
    withdrawn_event_id: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True)))
    # The public id (ann_…): the published event's id. Objections name it.
    id: str = Field(sa_column=Column(sa.Text, nullable=False))
    # Kept on the row, not counted from objections: the finaliser's row lock then re-checks them,
    # so an objection filed while a finaliser runs is never overtaken by it.
    objections_open: int = Field(sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    objections_upheld: int = Field(sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    # The call (申报批次) the award was granted under, from award.decided / award.reviewed (0007);
    # null for announcements from before the ledger passed it on.
    call_id: str | None = Field(default=None, sa_column=Column(sa.Text))


class CallRecord(NotifyTable, table=True):
    """A replica of the calls (grantline.policy `call.opened`): the title the 公示 page groups under."""

    __tablename__ = "calls"

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    title: str = Field(sa_column=Column(sa.Text, nullable=False))
    opened_at: datetime = Field(sa_column=_at(nullable=False))


class ObjectionRecord(NotifyTable, table=True):
    """异议: an objection to an announcement, filed by a member of the public during the notice."""

    __tablename__ = "objections"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="objections_status_known"),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL) AND (resolved_at IS NULL) = (resolved_by IS NULL) "
            "AND (resolved_at IS NULL) = (resolution_reason IS NULL) "
            "AND (resolved_at IS NULL) = (resolved_event_id IS NULL)",
            name="objections_resolution_whole",
        ),
        sa.Index("objections_listing", "status", "filed_at", "id"),
        sa.Index("objections_announcement", "announcement_id"),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    announcement_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("announcements.id"), nullable=False))
    application_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    # The objector's real name and contact: for the reviewing office only, never published.
    name: str = Field(sa_column=Column(sa.Text, nullable=False))
    organisation: str | None = Field(default=None, sa_column=Column(sa.Text))
    contact: str = Field(sa_column=Column(sa.Text, nullable=False))
    statement: str = Field(sa_column=Column(sa.Text, nullable=False))
    status: str = Field(sa_column=Column(sa.Text, nullable=False, server_default="open"))
    filed_at: datetime = Field(sa_column=_at(nullable=False, now=True))
    filed_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    resolved_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    resolution_reason: str | None = Field(default=None, sa_column=Column(sa.Text))
    resolved_at: datetime | None = Field(default=None, sa_column=_at())
    resolved_event_id: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True), unique=True))


class TransparencyLeafRecord(NotifyTable, table=True):
    """The transparency log's entries (services/notify/transparency): leaf `index` is the exact
    bytes hashed. Append-only: the service role may only INSERT and SELECT it."""

    __tablename__ = "transparency_leaves"
    __table_args__ = (
        sa.CheckConstraint("index >= 0", name="transparency_leaves_index_natural"),
        sa.CheckConstraint("kind IN ('published', 'withdrawn', 'finalized')", name="transparency_leaves_kind_known"),
        sa.CheckConstraint("octet_length(leaf_hash) = 32", name="transparency_leaves_hash_size"),
        sa.Index("transparency_leaves_announcement", "announcement_id", "kind"),
    )

    index: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    entry: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    announcement_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    kind: str = Field(sa_column=Column(sa.Text, nullable=False))
    # One entry per event: logging a change twice is a no-op.
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    logged_at: datetime = Field(sa_column=_at(nullable=False, now=True))


class TransparencyNodeRecord(NotifyTable, table=True):
    """The hash of each complete subtree of level ≥ 1 (leaves [index·2^level, (index+1)·2^level)),
    stored once when it completes: roots and proofs are folded from these in O(log n) reads."""

    __tablename__ = "transparency_nodes"
    __table_args__ = (
        sa.CheckConstraint("level >= 1 AND index >= 0", name="transparency_nodes_position"),
        sa.CheckConstraint("octet_length(hash) = 32", name="transparency_nodes_hash_size"),
    )

    level: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    index: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
