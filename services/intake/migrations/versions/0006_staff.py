"""intake: staff accounts (owned here: POST /v1/staff)

Revision ID: 0006
"""

from shared.messaging.records import create_staff_table, drop_staff_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_staff_table()


def downgrade() -> None:
    drop_staff_table()
