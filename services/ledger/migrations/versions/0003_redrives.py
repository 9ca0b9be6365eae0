"""ledger: re-drives of dead letters (who, why, when), and an index to list dead letters by

Revision ID: 0003
"""

from shared.messaging.records import create_redrive_table, drop_redrive_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_redrive_table()


def downgrade() -> None:
    drop_redrive_table()
