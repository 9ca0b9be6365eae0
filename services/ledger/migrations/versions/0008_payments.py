"""ledger: payments (payees, payment orders, batches and their items, the bank's documents and
their entries) and the journal kinds of paying (posting, payment_sent, payment_settled,
payment_failed, payment_returned, payment_cancelled)

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_KINDS_BEFORE = ("kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', 'release', 'rejection', "
                 "'cap_open', 'cap_amend')")
_KINDS = ("kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', 'release', 'rejection', "
          "'cap_open', 'cap_amend', 'posting', 'payment_sent', 'payment_settled', 'payment_failed', "
          "'payment_returned', 'payment_cancelled')")
_ORDER_STATES = "status IN ('awaiting_payee', 'ready', 'sent', 'settled', 'failed', 'cancelled')"


def upgrade() -> None:
    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries", _KINDS)

    # Where each application is paid, from application.received and payee.updated (the latest wins).
    op.create_table(
        "payees",
        sa.Column("application_id", sa.Text, primary_key=True),
        sa.Column("applicant_id", sa.Text, nullable=False),
        sa.Column("partner_id", sa.Text),
        sa.Column("account_name", sa.Text, nullable=False),
        sa.Column("account_number", sa.Text, nullable=False),
        sa.Column("bank_code", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
    )
    op.create_table(
        "payment_batches",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("program", sa.Text),
        sa.Column("year", sa.Integer),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("control_sum_fen", sa.BigInteger, nullable=False),
        sa.Column("created_by", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", JSONB),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("document", sa.LargeBinary),  # the pain.001 as first downloaded: every download is these bytes
        sa.CheckConstraint("status IN ('created', 'approved', 'sent')", name="payment_batches_status"),
        sa.CheckConstraint("count > 0 AND control_sum_fen > 0", name="payment_batches_totals"),
        sa.CheckConstraint("(status = 'sent') = (document IS NOT NULL)", name="payment_batches_sent_document"),
    )
    op.create_table(
        "payment_orders",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("application_id", sa.Text, sa.ForeignKey("awards.application_id"), nullable=False, unique=True),
        sa.Column("partner_id", sa.Text),
        sa.Column("applicant_id", sa.Text, nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("batch_id", sa.Text, sa.ForeignKey("payment_batches.id")),
        sa.Column("reason_code", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("finalized_event_id", sa.Text, nullable=False, unique=True),
        sa.Column("updated_at", sa.Text, nullable=False),  # RFC 3339: the last step's recorded time
        sa.CheckConstraint("amount_fen > 0", name="payment_orders_amount_positive"),
        sa.CheckConstraint(_ORDER_STATES, name="payment_orders_status"),
        sa.CheckConstraint("status NOT IN ('sent', 'settled') OR batch_id IS NOT NULL", name="payment_orders_sent_batched"),
    )
    op.create_index("payment_orders_status", "payment_orders", ["status", "id"])
    op.create_index("payment_orders_batch", "payment_orders", ["batch_id"])
    # One order in one batch, with the creditor as sent; an order returned and batched again has two.
    op.create_table(
        "payment_batch_items",
        sa.Column("batch_id", sa.Text, sa.ForeignKey("payment_batches.id"), primary_key=True),
        sa.Column("order_id", sa.Text, sa.ForeignKey("payment_orders.id"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("account_name", sa.Text),
        sa.Column("account_number", sa.Text),
        sa.Column("bank_code", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('batched', 'sent', 'settled', 'failed', 'returned')",
                           name="payment_batch_items_status"),
        sa.UniqueConstraint("batch_id", "position", name="payment_batch_items_position"),
    )
    # The bank's documents by content hash: the same document twice is one row.
    op.create_table(
        "bank_documents",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("msg_id", sa.Text, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("applied", sa.Integer, nullable=False, server_default="0"),  # entries applied so far (chunks)
        sa.Column("received_by", JSONB, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "bank_entries",
        sa.Column("document_sha256", sa.String(64), sa.ForeignKey("bank_documents.sha256"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("end_to_end_id", sa.Text),
        sa.Column("amount_fen", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text),
        sa.Column("reason_code", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('settled', 'returned', 'failed', 'accepted', 'unmatched', 'duplicate')",
                           name="bank_entries_outcome"),
    )
    op.create_index("bank_entries_unmatched", "bank_entries", ["recorded_at", "document_sha256", "position"],
                    postgresql_where=sa.text("outcome = 'unmatched'"))


def downgrade() -> None:
    op.drop_table("bank_entries")
    op.drop_table("bank_documents")
    op.drop_table("payment_batch_items")
    op.drop_table("payment_orders")
    op.drop_table("payment_batches")
    op.drop_table("payees")
    has_payments = op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM journal_entries WHERE kind IN "
                                                "('posting', 'payment_sent', 'payment_settled', 'payment_failed', "
                                                "'payment_returned', 'payment_cancelled'))"))
    if not has_payments:
        op.drop_constraint("journal_kind", "journal_entries", type_="check")
        op.create_check_constraint("journal_kind", "journal_entries", _KINDS_BEFORE)
