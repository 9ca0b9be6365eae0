"""notify: objections (异议) to announcements; announcements get their public id (ann_…) and the
counts of open and upheld objections that hold their finalisation

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The public id is the published event's id (services.notify.domain.announcement_id_for), so
    # announcements from before this migration get the id their event already fixed.
    op.add_column("announcements", sa.Column("id", sa.Text))
    op.execute("UPDATE announcements SET id = 'ann_' || replace(published_event_id::text, '-', '')")
    op.alter_column("announcements", "id", nullable=False)
    op.create_unique_constraint("announcements_id_unique", "announcements", ["id"])
    # Kept on the row, not counted from objections: the finaliser's row lock then re-checks them,
    # so an objection filed while a finaliser runs is never overtaken by it.
    op.add_column(
        "announcements", sa.Column("objections_open", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column(
        "announcements", sa.Column("objections_upheld", sa.Integer, nullable=False, server_default="0")
    )
    op.create_check_constraint("announcements_objections_open_counted", "announcements", "objections_open >= 0")
    op.create_check_constraint(
        "announcements_objections_upheld_counted", "announcements", "objections_upheld >= 0"
    )

    op.create_table(
        "objections",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("announcement_id", sa.Text, sa.ForeignKey("announcements.id"), nullable=False),
        sa.Column("application_id", sa.Text, nullable=False),
        # The objector's real name and contact: for the reviewing office only, never published.
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("organisation", sa.Text),
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("filed_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("resolved_by", JSONB),
        sa.Column("resolution_reason", sa.Text),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_event_id", UUID(as_uuid=True), unique=True),
        sa.CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="objections_status_known"),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL) AND (resolved_at IS NULL) = (resolved_by IS NULL) "
            "AND (resolved_at IS NULL) = (resolution_reason IS NULL) "
            "AND (resolved_at IS NULL) = (resolved_event_id IS NULL)",
            name="objections_resolution_whole",
        ),
    )
    op.create_index("objections_listing", "objections", ["status", "filed_at", "id"])
    op.create_index("objections_announcement", "objections", ["announcement_id"])


def downgrade() -> None:
    op.drop_table("objections")
    op.drop_constraint("announcements_objections_upheld_counted", "announcements")
    op.drop_constraint("announcements_objections_open_counted", "announcements")
    op.drop_column("announcements", "objections_upheld")
    op.drop_column("announcements", "objections_open")
    op.drop_constraint("announcements_id_unique", "announcements")
    op.drop_column("announcements", "id")
