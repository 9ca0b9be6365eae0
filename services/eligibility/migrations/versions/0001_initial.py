"""eligibility: assessments (the receipts), outbox, inbox, partner directory replica

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
        "assessments",
        sa.Column("application_id", sa.Text, primary_key=True),
        sa.Column("received_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("eligible", sa.Boolean, nullable=False),
        sa.Column("entitlement_fen", sa.BigInteger, nullable=False),
        sa.Column("catalog_version", sa.Text, nullable=False),
        sa.Column("receipt", JSONB, nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("entitlement_fen >= 0", name="assessments_entitlement_non_negative"),
    )


def downgrade() -> None:
    raise NotImplementedError("the first migration is not reversible")
