"""ledger: outbox, inbox, partner directory replica

Revision ID: 0001
"""

from shared.messaging.records import create_shared_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_shared_tables()


def downgrade() -> None:
    raise NotImplementedError("the first migration is not reversible")
