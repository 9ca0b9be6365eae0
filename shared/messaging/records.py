"""Tables every service schema has: the outbox (its event history), the inbox (dedupe),
and the partner directory (intake owns it; the others keep a replica from events)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

# The shared tables live in their own registry: each service's models start from a copy of this
# metadata (`service_registry`), so a service's tables are declared once, next to the ones every
# schema has, without two services' tables meeting in one global metadata.
shared_registry = registry(metadata=MetaData())


class SharedTable(SQLModel, registry=shared_registry):
    pass


class OutboxRecord(SharedTable, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("outbox_subject", "subject"),
        sa.Index("outbox_unpublished", "seq", postgresql_where=sa.text("published_at IS NULL")),
        sa.Index("outbox_dead_letters", "seq", postgresql_where=sa.text("type = 'event.dead_lettered'")),
    )

    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), primary_key=True))
    id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), unique=True, nullable=False))
    topic: str = Field(sa_column=Column(sa.Text, nullable=False))
    key: str = Field(sa_column=Column(sa.Text, nullable=False))
    type: str = Field(sa_column=Column(sa.Text, nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    envelope: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    published_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True)))


class RelayOffsetRecord(SharedTable, table=True):
    __tablename__ = "relay_offsets"

    topic: str = Field(sa_column=Column(sa.Text, primary_key=True))
    partition: int = Field(sa_column=Column(sa.Integer, primary_key=True))
    last_offset: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False))


class InboxRecord(SharedTable, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(sa_column=Column(sa.Text, primary_key=True))
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), primary_key=True))
    handled_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class PartnerRecord(SharedTable, table=True):
    __tablename__ = "partners"

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    name: str = Field(sa_column=Column(sa.Text, nullable=False))
    callback_url: str = Field(sa_column=Column(sa.Text, nullable=False))
    api_key_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class RedriveRecord(SharedTable, table=True):
    __tablename__ = "redrives"
    __table_args__ = (sa.Index("redrives_event", "event_id"),)

    dead_letter_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), sa.ForeignKey("outbox.id"), primary_key=True)
    )
    consumer: str = Field(sa_column=Column(sa.Text, nullable=False))
    original_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False))
    redriven_by: str = Field(sa_column=Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))
    redriven_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False))  # the re-published copy


class StaffRecord(SharedTable, table=True):
    """Staff accounts: intake owns them (POST /v1/staff); every other service keeps a replica
    from staff.registered / staff.deactivated, so a key is checked locally and a deactivation
    reaches every service through the event, not through another service's table."""

    __tablename__ = "staff"

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    name: str = Field(sa_column=Column(sa.Text, nullable=False))
    roles: list[str] = Field(sa_column=Column(ARRAY(sa.Text), nullable=False))
    api_key_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    active: bool = Field(sa_column=Column(sa.Boolean, nullable=False, server_default=sa.true()))
    registered_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    deactivated_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True)))


def service_registry() -> registry:
    """A new registry for one service's tables, already holding the tables every schema has."""
    metadata = MetaData()
    for table in shared_registry.metadata.tables.values():
        table.to_metadata(metadata)
    return registry(metadata=metadata)


def create_shared_tables() -> None:
    """Called from each service's first migration, inside that service's schema."""
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("outbox_subject", "outbox", ["subject"])
    op.create_index("outbox_unpublished", "outbox", ["seq"], postgresql_where=sa.text("published_at IS NULL"))
    # The outbox is the service's event history: rows are only ever inserted and marked sent.
    op.execute(
        """
        CREATE FUNCTION outbox_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'outbox is append-only'; END IF;
          IF NEW.id <> OLD.id OR NEW.envelope <> OLD.envelope OR NEW.topic <> OLD.topic THEN
            RAISE EXCEPTION 'outbox rows are immutable except published_at';
          END IF;
          RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_append_only BEFORE UPDATE OR DELETE ON outbox "
        "FOR EACH ROW EXECUTE FUNCTION outbox_append_only()"
    )
    # The last event the broker acknowledged per partition: when the broker no longer holds
    # that event at that offset, it has forgotten what it acknowledged and the relay re-publishes.
    op.create_table(
        "relay_offsets",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("last_offset", sa.BigInteger, nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "partners",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("callback_url", sa.Text, nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def create_redrive_table() -> None:
    """Operators' re-drives of dead letters (shared/deadletters.py), in every service schema: one
    row per dead letter at most, with who asked and why; and an index to list dead letters by."""
    op.create_table(
        "redrives",
        sa.Column("dead_letter_id", UUID(as_uuid=True), sa.ForeignKey("outbox.id"), primary_key=True),
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("original_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("redriven_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("redriven_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),  # the re-published event's id
    )
    op.create_index("redrives_event", "redrives", ["event_id"])
    op.create_index(
        "outbox_dead_letters", "outbox", ["seq"], postgresql_where=sa.text("type = 'event.dead_lettered'")
    )


def drop_redrive_table() -> None:
    op.drop_index("outbox_dead_letters", table_name="outbox")
    op.drop_table("redrives")


def create_staff_table() -> None:
    """The staff accounts (intake) or their replica (every other service), in each service schema."""
    op.create_table(
        "staff",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("roles", ARRAY(sa.Text), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("registered_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True)),
    )


def drop_staff_table() -> None:
    op.drop_table("staff")
