"""notify: the call (申报批次) of each announcement, and a replica of the calls' titles, so the 公示
page groups by program and call

award.decided and award.reviewed carry `call_id` from here; announcements published before have
none (null) and the page falls back to their support year. The calls come from grantline.policy
`call.opened`. The page's order (year, program, call, newest first) gets its own index; the
existing announcements_listing stays for /v1/announcements (year and program, newest first).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("announcements", sa.Column("call_id", sa.Text))
    op.create_index("announcements_by_call", "announcements",
                    ["year", "program", sa.text("coalesce(call_id, '')"), "published_at"])
    op.create_table(
        "calls",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_index("announcements_by_call", "announcements")
    op.drop_column("announcements", "call_id")
