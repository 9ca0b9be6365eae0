"""ledger: the call (申报批次) each decision was assessed under, in its own column

award.decided and award.reviewed now carry the receipt's `call_id`. It is kept beside the stored
event data, not in it: decisions.data of rows from before this migration has no `call_id`, and
replay compares decisions.data with what it rebuilds, so putting the key there would make every
older row differ. Nullable: receipts from before calls named none.

Rows from before are filled where their pools say the call: a decision that drew on a call's
budget pool (`pool:call-budget:*:<year>:<call id>`) was assessed under that call. Others (a call
without a budget, an ineligible decision) stay null; nothing reads the column to decide.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("call_id", sa.Text))
    op.execute(
        "UPDATE decisions d SET call_id = c.call_id FROM ("
        "SELECT x.application_id, min(split_part(acc, ':', 5)) AS call_id "
        "FROM decisions x CROSS JOIN unnest(x.pool_accounts) AS acc "
        "WHERE acc LIKE 'pool:call-budget:%' GROUP BY x.application_id) c "
        "WHERE d.application_id = c.application_id"
    )


def downgrade() -> None:
    op.drop_column("decisions", "call_id")
