"""intake: the payee of an application and its projected payment

Revision ID: 0008

- `payee`: where an award is paid (account name, account number, CNAPS bank code), given at
  submission or by PUT /v1/applications/{id}/payee; NULL until given.
- `payment`: the `payment` block projected from grantline.payments (status, amount, order,
  batch, when); NULL until the ledger orders the payment.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("payee", JSONB, nullable=True))
    op.add_column("applications", sa.Column("payment", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("applications", "payment")
    op.drop_column("applications", "payee")
