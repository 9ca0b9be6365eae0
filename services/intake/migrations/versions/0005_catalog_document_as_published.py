"""intake: the replicated catalog document kept as published (json, not jsonb)

Revision ID: 0005

jsonb orders an object's keys by length, so GET /v1/programs listed a version's facts in that
order (sponsor_id before study_type) instead of the document's, as eligibility serves it. A
document replicated before this keeps the order jsonb gave it; the next one published keeps its own.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("catalog_versions", "document", type_=sa.JSON, existing_type=JSONB,
                    existing_nullable=False, postgresql_using="document::json")


def downgrade() -> None:
    op.alter_column("catalog_versions", "document", type_=JSONB, existing_type=sa.JSON,
                    existing_nullable=False, postgresql_using="document::jsonb")
