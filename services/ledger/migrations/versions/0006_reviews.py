"""ledger: holds and reviews (核定): an award's review state, what its reviewer weighs, the reviews
themselves (append-only), and the journal kinds of the two phases (hold, approval, release,
rejection)

Existing awards were decided at once: their review state stays null. Existing decisions say so
as award.decided says it now (`"review": "auto"` in their data), so that a replay of their
receipts, which carry no mode and so count as auto, finds them equal.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KINDS_BEFORE = "kind IN ('award', 'top_up', 'revocation', 'redecision')"
_KINDS = "kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', 'release', 'rejection')"


def upgrade() -> None:
    # pending: held on every pool until a reviewer decides; approved: what it holds stands;
    # rejected: given back (and no longer live, so marked revoked). Null: decided at once.
    op.add_column("awards", sa.Column("review", sa.Text))
    op.create_check_constraint("awards_review_state", "awards",
                               "review IS NULL OR review IN ('pending', 'approved', 'rejected')")
    op.create_check_constraint("awards_rejected_not_live", "awards", "review IS DISTINCT FROM 'rejected' OR revoked")
    # The review queue and the held part of each pool read only the pending awards.
    op.create_index("awards_pending", "awards", ["journal_seq"],
                    postgresql_where=sa.text("review = 'pending' AND NOT revoked"))
    # For programs under review: the amount asked for and every rule checked, from the receipt.
    op.add_column("decisions", sa.Column("review_basis", JSONB))
    op.execute("""UPDATE decisions SET data = data || '{"review": "auto"}'::jsonb WHERE NOT data ? 'review'""")

    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries", _KINDS)

    # One review per award: who decided what, why and when (append-only, like revocations).
    op.create_table(
        "reviews",
        sa.Column("application_id", sa.Text, sa.ForeignKey("awards.application_id"), primary_key=True),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("held_fen", sa.BigInteger, nullable=False),
        sa.Column("awarded_fen", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reviewed_by", sa.Text, nullable=False),  # the actor's id
        sa.Column("reviewed_by_name", sa.Text),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("journal_seq", sa.BigInteger, nullable=False, unique=True),  # the approval or rejection entry
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("data", JSONB, nullable=False),  # the award.reviewed data, as published
        sa.CheckConstraint("decision IN ('approve', 'reject')", name="reviews_decision"),
        sa.CheckConstraint("held_fen > 0 AND 0 <= awarded_fen AND awarded_fen <= held_fen",
                           name="reviews_awarded_within_hold"),
        sa.CheckConstraint("(decision = 'reject') = (awarded_fen = 0)", name="reviews_reject_awards_nothing"),
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="reviews_reason_length"),
    )
    op.execute(
        "CREATE TRIGGER reviews_append_only BEFORE UPDATE OR DELETE ON reviews "
        "FOR EACH ROW EXECUTE FUNCTION journal_append_only()"
    )


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries", _KINDS_BEFORE)
    op.drop_column("decisions", "review_basis")
    op.drop_index("awards_pending", table_name="awards")
    op.drop_constraint("awards_rejected_not_live", "awards", type_="check")
    op.drop_constraint("awards_review_state", "awards", type_="check")
    op.drop_column("awards", "review")
