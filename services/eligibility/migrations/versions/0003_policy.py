"""eligibility: catalog versions and calls (申报批次), the policy it assesses under

Revision ID: 0003

The calls' exclusion constraint needs btree_gist (gist equality on text and integer). It is
installed in `public`, never in a service schema: dropping a scratch schema (replay, tests)
must not drop it from under the live one. The default operator classes it brings are found
whatever the search_path, so the constraint needs no schema name.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
    op.create_table(
        "catalog_versions",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("published_by", JSONB, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.CheckConstraint("version ~ '^sha256:[0-9a-f]{64}$'", name="catalog_versions_content_address"),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_from", sa.Date, nullable=False),
        sa.Column("event_to", sa.Date, nullable=False),
        sa.Column("catalog_version", sa.Text, sa.ForeignKey("catalog_versions.version"), nullable=False),
        sa.Column("budget_fen", sa.BigInteger),
        sa.Column("opened_by", JSONB, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("closed_by", JSONB),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("close_reason", sa.Text),
        sa.CheckConstraint("closes_at >= opens_at", name="calls_closes_after_opening"),
        sa.CheckConstraint("event_to >= event_from", name="calls_event_window_ordered"),
        sa.CheckConstraint("budget_fen IS NULL OR budget_fen > 0", name="calls_budget_positive"),
        sa.CheckConstraint(
            "(closed_at IS NULL) = (closed_by IS NULL) AND (closed_at IS NULL) = (close_reason IS NULL)",
            name="calls_closed_with_who_and_why",
        ),
        ExcludeConstraint(
            (sa.column("program"), "="),
            (sa.column("year"), "="),
            (sa.func.tstzrange(sa.column("opens_at"), sa.column("closes_at")), "&&"),
            name="calls_no_overlap",
            using="gist",
        ),
    )


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_table("catalog_versions")
