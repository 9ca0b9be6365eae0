"""notify: the transparency log (RFC 9162 Merkle log of published, withdrawn and finalized
announcements): its leaves and the hashes of its complete subtrees

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transparency_leaves",
        sa.Column("index", sa.BigInteger, primary_key=True, autoincrement=False),
        # The exact bytes hashed (canonical JSON): what /v1/transparency/entries serves.
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("announcement_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        # One entry per event: logging a change twice is a no-op.
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("index >= 0", name="transparency_leaves_index_natural"),
        sa.CheckConstraint("kind IN ('published', 'withdrawn', 'finalized')", name="transparency_leaves_kind_known"),
        sa.CheckConstraint("octet_length(leaf_hash) = 32", name="transparency_leaves_hash_size"),
    )
    # log_index in the announcements' listing: the index of each announcement's published leaf.
    op.create_index("transparency_leaves_announcement", "transparency_leaves", ["announcement_id", "kind"])
    op.create_table(
        "transparency_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("level >= 1 AND index >= 0", name="transparency_nodes_position"),
        sa.CheckConstraint("octet_length(hash) = 32", name="transparency_nodes_hash_size"),
    )


def downgrade() -> None:
    op.drop_table("transparency_nodes")
    op.drop_index("transparency_leaves_announcement", "transparency_leaves")
    op.drop_table("transparency_leaves")
