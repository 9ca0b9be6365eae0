"""intake: partners, applications, timeline, idempotency keys, outbox, inbox

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.messaging.records import create_shared_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_shared_tables()
    op.create_table(
        "applications",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("partner_id", sa.Text, sa.ForeignKey("partners.id"), nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("input", JSONB, nullable=False),
        sa.Column("decision", JSONB),
        sa.Column("announcement", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('received','ineligible','approved','partially_approved','rejected','revoked')",
            name="applications_status_known",
        ),
    )
    op.create_index("applications_partner_seq", "applications", ["partner_id", "seq"])
    op.create_index("applications_status_seq", "applications", ["status", "seq"])
    op.create_table(
        "timeline",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("application_id", sa.Text, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_seq", sa.BigInteger, sa.Identity(), nullable=False),
    )
    op.create_index("timeline_application", "timeline", ["application_id", "recorded_seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "timeline", "applications", "partners", "inbox", "outbox"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS outbox_append_only() CASCADE")
