"""notify: staff accounts (a replica from staff events)

Revision ID: 0004
"""

from shared.messaging.records import create_staff_table, drop_staff_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_staff_table()


def downgrade() -> None:
    drop_staff_table()
