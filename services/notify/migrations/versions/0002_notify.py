"""notify: webhook deliveries and their attempts, re-drives, announcements (公示)

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (event, partner): the consumer inserts it, the dispatcher works it off.
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("application_id", sa.Text, nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
        # The exact bytes that are signed and sent, the same on every attempt.
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        # Attempts since the last re-drive: the delivery parks when this reaches the maximum.
        sa.Column("round_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Set while a dispatcher is sending; the outcome is recorded only by the holder.
        sa.Column("claim_token", UUID(as_uuid=True)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("parked_at", sa.DateTime(timezone=True)),
        sa.Column("redriven_by", sa.Text),
        sa.Column("redriven_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("event_id", "partner_id", name="deliveries_event_partner"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'parked')", name="deliveries_status_known"),
    )
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("deliveries_application", "deliveries", ["application_id", "created_at"])
    op.create_index("deliveries_status", "deliveries", ["status", "created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.Text, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),  # delivered | failed | refused
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("delivery_id", "attempt", name="delivery_attempts_once"),
    )

    op.create_table(
        "delivery_redrives",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.Text, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("redriven_by", sa.Text, nullable=False),
        sa.Column("redriven_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("previous_status", sa.Text, nullable=False),
    )
    op.create_index("delivery_redrives_delivery", "delivery_redrives", ["delivery_id"])

    # 公示: one announcement per awarded application.
    op.create_table(
        "announcements",
        sa.Column("application_id", sa.Text, primary_key=True),
        sa.Column("decided_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("applicant_id", sa.Text, nullable=False),
        sa.Column("applicant_name", sa.Text, nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notice_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True)),
        sa.Column("finalized_event_id", UUID(as_uuid=True), unique=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_event_id", UUID(as_uuid=True)),
        sa.CheckConstraint("amount_fen > 0", name="announcements_amount_positive"),
        sa.CheckConstraint("notice_ends_at >= published_at", name="announcements_notice_order"),
        sa.CheckConstraint(
            "finalized_at IS NULL OR finalized_event_id IS NOT NULL", name="announcements_finalized_has_event"
        ),
    )
    op.create_index(
        "announcements_due",
        "announcements",
        ["notice_ends_at"],
        postgresql_where=sa.text("finalized_at IS NULL AND withdrawn_at IS NULL"),
    )
    op.create_index("announcements_listing", "announcements", ["year", "program", "published_at"])


def downgrade() -> None:
    op.drop_table("announcements")
    op.drop_table("delivery_redrives")
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
