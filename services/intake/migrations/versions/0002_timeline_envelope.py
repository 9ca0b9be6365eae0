"""intake: keep the full envelope of each consumed downstream event in the timeline

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for intake's own events (their envelope is in the outbox) and for rows recorded before this.
    op.add_column("timeline", sa.Column("envelope", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("timeline", "envelope")
