"""ledger: pools, decisions, awards, the hash-chained journal and its head, revocations

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    # One pool instance per journal account name (services.ledger.journal.pool_account), which is
    # unique and parseable; the columns repeat its parts for filtering.
    op.create_table(
        "pools",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("pool", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("beneficiary", sa.Text, nullable=False),
        sa.Column("year", sa.Integer),
        sa.Column("subject", sa.Text),
        sa.Column("cap_fen", sa.BigInteger, nullable=False),
        sa.Column("committed_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("citation", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # The last line of defence: no code path can commit a pool over its cap or below zero.
        sa.CheckConstraint("committed_fen <= cap_fen", name="pools_committed_within_cap"),
        sa.CheckConstraint("committed_fen >= 0", name="pools_committed_not_negative"),
        sa.CheckConstraint("cap_fen >= 0", name="pools_cap_not_negative"),
        sa.CheckConstraint("year IS NOT NULL OR subject IS NOT NULL", name="pools_year_or_subject"),
    )
    op.create_index("pools_beneficiary_year", "pools", ["beneficiary", "year"])

    # One decision per application, whatever event id carried its assessment.
    op.create_table(
        "decisions",
        sa.Column("application_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("assessed_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("decided_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("beneficiary", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("entitlement_fen", sa.BigInteger, nullable=False),
        sa.Column("awarded_fen", sa.BigInteger, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("recorded_for", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),  # the award.decided data, as published
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("0 <= awarded_fen AND awarded_fen <= entitlement_fen", name="decisions_awarded_range"),
    )
    op.create_index("decisions_beneficiary_year", "decisions", ["beneficiary", "year"])

    # A granted award (awarded > 0): base or top-up, with its own draws and its journal entry.
    op.create_table(
        "awards",
        sa.Column("application_id", sa.Text, sa.ForeignKey("decisions.application_id"), primary_key=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("beneficiary", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("overlap_applicant", sa.Text, nullable=False),
        sa.Column("overlap_subject", sa.Text, nullable=False),
        sa.Column("overlap_milestone", sa.Text, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("draws", JSONB, nullable=False),  # [{"account": pool account, "amount": fen}]
        sa.Column("top_up_of", sa.Text),
        sa.Column("journal_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("amount_fen > 0", name="awards_amount_positive"),
    )
    # 不重复: one live chain per (applicant, subject, milestone); top-ups hang off its base.
    op.create_index(
        "awards_one_live_chain",
        "awards",
        ["overlap_applicant", "overlap_subject", "overlap_milestone"],
        unique=True,
        postgresql_where=sa.text("NOT revoked AND top_up_of IS NULL"),
    )
    op.create_index(
        "awards_live_by_overlap",
        "awards",
        ["overlap_applicant", "overlap_subject", "overlap_milestone", "journal_seq"],
        postgresql_where=sa.text("NOT revoked"),
    )
    op.create_index("awards_beneficiary_year", "awards", ["beneficiary", "year"])

    # The journal: append-only, double-entry (postings sum to zero), hash-chained.
    op.execute(
        """
        CREATE FUNCTION journal_postings_sum(postings jsonb) RETURNS numeric
        LANGUAGE sql IMMUTABLE STRICT AS $$
          SELECT coalesce(sum((p->>'amount')::numeric), 0) FROM jsonb_array_elements(postings) AS p
        $$;
        """
    )
    op.create_table(
        "journal_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("application_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("postings", JSONB, nullable=False),  # [{"account": ..., "amount": integer fen}]
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("recorded_for", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('award', 'top_up', 'revocation')", name="journal_kind"),
        sa.CheckConstraint("seq >= 1", name="journal_seq_positive"),
        sa.CheckConstraint(
            "jsonb_typeof(postings) = 'array' AND jsonb_array_length(postings) > 0 "
            "AND journal_postings_sum(postings) = 0",
            name="journal_postings_balance",
        ),
    )
    op.create_index("journal_entries_application", "journal_entries", ["application_id"])
    op.execute(
        """
        CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the journal is append-only (% refused on %)', TG_OP, TG_TABLE_NAME;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal_entries "
        "FOR EACH ROW EXECUTE FUNCTION journal_append_only()"
    )
    op.execute(
        "CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
    )

    # The chain's head: one row, locked FOR UPDATE by every writer, so no two instances fork it.
    op.create_table(
        "journal_head",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="journal_head_single_row"),
    )
    op.execute(f"INSERT INTO journal_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')")
    op.execute(
        """
        CREATE FUNCTION journal_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'journal_head cannot be deleted'; END IF;
          IF NEW.seq < OLD.seq THEN RAISE EXCEPTION 'journal_head only moves forward'; END IF;
          RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER journal_head_forward_only BEFORE UPDATE OR DELETE ON journal_head "
        "FOR EACH ROW EXECUTE FUNCTION journal_head_forward_only()"
    )

    # Operator actions audit: who revoked what, why, when; one revocation per application.
    op.create_table(
        "revocations",
        sa.Column("application_id", sa.Text, sa.ForeignKey("awards.application_id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("revoked_by", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("journal_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("data", JSONB, nullable=False),  # the award.revoked data, as published
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="revocations_reason_length"),
    )
    op.execute(
        "CREATE TRIGGER revocations_append_only BEFORE UPDATE OR DELETE ON revocations "
        "FOR EACH ROW EXECUTE FUNCTION journal_append_only()"
    )


def downgrade() -> None:
    for table in ("revocations", "journal_head", "journal_entries", "awards", "decisions", "pools"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS journal_head_forward_only()")
    op.execute("DROP FUNCTION IF EXISTS journal_append_only()")
    op.execute("DROP FUNCTION IF EXISTS journal_postings_sum(jsonb)")
