"""intake: a replica of the policy (catalog versions and calls, from grantline.policy), and the
call each application was received under

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for applications received before calls existed.
    op.add_column("applications", sa.Column("call_id", sa.Text, nullable=True))
    op.create_table(
        "catalog_versions",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        # Moved to the moment of closing when a call is closed early (possibly before opens_at).
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_from", sa.Date, nullable=False),
        sa.Column("event_to", sa.Date, nullable=False),
        # No foreign key: call.opened and catalog.published travel on different partitions.
        sa.Column("catalog_version", sa.Text, nullable=False),
        sa.Column("budget_fen", sa.BigInteger, nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.Text, nullable=True),
    )
    op.create_index("calls_program_year", "calls", ["program", "year"])


def downgrade() -> None:
    op.drop_index("calls_program_year", table_name="calls")
    op.drop_table("calls")
    op.drop_table("catalog_versions")
    op.drop_column("applications", "call_id")
