"""ledger: staff accounts (a replica from staff events)

Revision ID: 0005
"""

from shared.messaging.records import create_staff_table, drop_staff_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_staff_table()


def downgrade() -> None:
    drop_staff_table()
