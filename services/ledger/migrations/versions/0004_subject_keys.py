"""ledger: subject keys (pools and overlap chains compared by ledger_subject_key), chain members
on decisions, re-decision entries, and the subject clashes found in the rows already there

Existing rows keep their subjects as written (pool accounts are in the hashed journal); each gains
its key beside them. Where two rows of one kind fold to one key, the migration does not merge
them: one keeps the key (a pool: the one with the most committed, then the first account; an
overlap chain: the one granted first), the others stay apart, without a key, and each such group
is written to `subject_clashes` for the auditor (GET /v1/audit/subject-clashes) and counted in the
log. So the migration never fails on a clash, and the unique indexes it creates hold.

Revision ID: 0004
"""

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.ledger.domain import ledger_subject_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_KEYS_CHUNK = 5_000


def upgrade() -> None:
    op.add_column("pools", sa.Column("subject_key", sa.Text))
    op.add_column("awards", sa.Column("overlap_key", sa.Text))
    op.add_column("decisions", sa.Column("overlap_applicant", sa.Text))
    op.add_column("decisions", sa.Column("overlap_key", sa.Text))
    op.add_column("decisions", sa.Column("overlap_milestone", sa.Text))
    op.add_column("decisions", sa.Column("pool_accounts", ARRAY(sa.Text)))
    # Revocations made from here on re-decide the rest of their chain; replay repeats each as made.
    op.add_column("revocations", sa.Column("redecides", sa.Boolean, nullable=False, server_default=sa.false()))
    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries",
                               "kind IN ('award', 'top_up', 'revocation', 'redecision')")
    op.create_table(
        "subject_clashes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("subject_key", sa.Text, nullable=False),
        sa.Column("scope", JSONB, nullable=False),  # the pool instance or the (applicant, milestone) folded
        sa.Column("kept", sa.Text, nullable=False),  # the pool account or the overlap subject that has the key
        sa.Column("members", JSONB, nullable=False),  # every row of the group, with what it holds
        sa.Column("found_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('pool', 'overlap_chain')", name="subject_clashes_kind"),
    )

    _fill_subject_keys()
    pools = _key_pools()
    chains = _key_awards()
    # The chain members among decisions: every granted one (its award has the chain and the pools).
    op.execute(
        "UPDATE decisions d SET overlap_applicant = a.overlap_applicant, overlap_key = a.overlap_key, "
        "overlap_milestone = a.overlap_milestone, pool_accounts = ARRAY(SELECT x->>'account' FROM "
        "jsonb_array_elements(a.draws) AS x) FROM awards a WHERE a.application_id = d.application_id "
        "AND a.overlap_key IS NOT NULL"
    )
    op.execute("DROP TABLE ledger_subject_keys")

    op.drop_index("awards_one_live_chain", table_name="awards")
    op.drop_index("awards_live_by_overlap", table_name="awards")
    op.create_index("awards_one_live_chain", "awards", ["overlap_applicant", "overlap_key", "overlap_milestone"],
                    unique=True, postgresql_where=sa.text("NOT revoked AND top_up_of IS NULL"))
    op.create_index("awards_live_by_overlap", "awards",
                    ["overlap_applicant", "overlap_key", "overlap_milestone", "journal_seq"],
                    postgresql_where=sa.text("NOT revoked"))
    op.create_index("pools_one_per_subject_key", "pools", ["pool", "beneficiary", "year", "subject_key"],
                    unique=True, postgresql_nulls_not_distinct=True,
                    postgresql_where=sa.text("subject_key IS NOT NULL"))
    op.create_index("decisions_chain", "decisions", ["overlap_applicant", "overlap_key", "overlap_milestone", "seq"],
                    postgresql_where=sa.text("overlap_key IS NOT NULL"))
    if pools or chains:
        log.warning("ledger 0004: %d subject clashes found (%d among pools, %d among overlap chains): "
                    "kept apart, listed in subject_clashes", pools + chains, pools, chains)


def _fill_subject_keys() -> None:
    """A scratch table of every subject the rows hold and its key (computed here, in Python)."""
    op.execute("CREATE TEMPORARY TABLE ledger_subject_keys (subject text PRIMARY KEY, subject_key text NOT NULL)")
    bind = op.get_bind()
    subjects = [row[0] for row in bind.execute(sa.text(
        "SELECT subject FROM pools WHERE subject IS NOT NULL AND scope <> 'call' "
        "UNION SELECT overlap_subject FROM awards"))]
    for start in range(0, len(subjects), _KEYS_CHUNK):
        chunk = subjects[start:start + _KEYS_CHUNK]
        bind.execute(sa.text("INSERT INTO ledger_subject_keys SELECT * FROM unnest(CAST(:s AS text[]), "
                             "CAST(:k AS text[]))"),
                     {"s": chunk, "k": [ledger_subject_key(s) for s in chunk]})


def _key_pools() -> int:
    """Every pool with a subject gets its key, but one per (pool, beneficiary, year, key)."""
    op.execute(
        "CREATE TEMPORARY TABLE ledger_pool_keys AS "
        "SELECT p.account, p.pool, p.beneficiary, p.year, k.subject_key, p.subject, p.committed_fen, p.cap_fen, "
        "row_number() OVER (g ORDER BY p.committed_fen DESC, p.account) AS rank, count(*) OVER g AS n "
        "FROM pools p JOIN ledger_subject_keys k ON k.subject = p.subject WHERE p.scope <> 'call' "
        "WINDOW g AS (PARTITION BY p.pool, p.beneficiary, p.year, k.subject_key)"
    )
    op.execute("UPDATE pools p SET subject_key = k.subject_key FROM ledger_pool_keys k "
               "WHERE k.account = p.account AND k.rank = 1")
    op.execute(
        "INSERT INTO subject_clashes (kind, subject_key, scope, kept, members) "
        "SELECT 'pool', subject_key, jsonb_build_object('pool', pool, 'beneficiary', beneficiary, 'year', year), "
        "min(account) FILTER (WHERE rank = 1), jsonb_agg(jsonb_build_object('account', account, 'subject', subject, "
        "'committed_fen', committed_fen, 'cap_fen', cap_fen) ORDER BY rank) "
        "FROM ledger_pool_keys WHERE n > 1 GROUP BY pool, beneficiary, year, subject_key ORDER BY min(account)"
    )
    found = op.get_bind().scalar(sa.text("SELECT count(DISTINCT (pool, beneficiary, year, subject_key)) "
                                         "FROM ledger_pool_keys WHERE n > 1"))
    op.execute("DROP TABLE ledger_pool_keys")
    return int(found or 0)


def _key_awards() -> int:
    """Every award gets its key, but among the live chains of one (applicant, key, milestone) only
    the one granted first: the others (written another way before subjects were keyed) stay apart."""
    op.execute(
        "CREATE TEMPORARY TABLE ledger_chain_keys AS "
        "SELECT overlap_applicant, overlap_milestone, subject_key, overlap_subject, first_seq, "
        "row_number() OVER (g ORDER BY first_seq) AS rank, count(*) OVER g AS n FROM ("
        "  SELECT a.overlap_applicant, a.overlap_milestone, k.subject_key, a.overlap_subject, "
        "  min(a.journal_seq) AS first_seq FROM awards a JOIN ledger_subject_keys k ON k.subject = a.overlap_subject "
        "  WHERE NOT a.revoked GROUP BY 1, 2, 3, 4) AS chains "
        "WINDOW g AS (PARTITION BY overlap_applicant, overlap_milestone, subject_key)"
    )
    op.execute(
        "UPDATE awards a SET overlap_key = k.subject_key FROM ledger_subject_keys k "
        "WHERE k.subject = a.overlap_subject AND (a.revoked OR NOT EXISTS (SELECT 1 FROM ledger_chain_keys c "
        "WHERE c.overlap_applicant = a.overlap_applicant AND c.overlap_milestone = a.overlap_milestone "
        "AND c.overlap_subject = a.overlap_subject AND c.rank > 1))"
    )
    op.execute(
        "INSERT INTO subject_clashes (kind, subject_key, scope, kept, members) "
        "SELECT 'overlap_chain', c.subject_key, jsonb_build_object('applicant', c.overlap_applicant, "
        "'milestone', c.overlap_milestone), min(c.overlap_subject) FILTER (WHERE c.rank = 1), "
        "jsonb_agg(jsonb_build_object('overlap_subject', c.overlap_subject, 'applications', "
        "(SELECT jsonb_agg(a.application_id ORDER BY a.journal_seq) FROM awards a "
        "WHERE a.overlap_applicant = c.overlap_applicant AND a.overlap_milestone = c.overlap_milestone "
        "AND a.overlap_subject = c.overlap_subject AND NOT a.revoked), 'amount_fen', "
        "(SELECT sum(a.amount_fen) FROM awards a WHERE a.overlap_applicant = c.overlap_applicant "
        "AND a.overlap_milestone = c.overlap_milestone AND a.overlap_subject = c.overlap_subject "
        "AND NOT a.revoked)) ORDER BY c.rank) "
        "FROM ledger_chain_keys c WHERE c.n > 1 GROUP BY c.overlap_applicant, c.overlap_milestone, c.subject_key "
        "ORDER BY min(c.first_seq)"
    )
    found = op.get_bind().scalar(sa.text(
        "SELECT count(DISTINCT (overlap_applicant, overlap_milestone, subject_key)) FROM ledger_chain_keys "
        "WHERE n > 1"))
    op.execute("DROP TABLE ledger_chain_keys")
    return int(found or 0)


def downgrade() -> None:
    op.drop_index("decisions_chain", table_name="decisions")
    op.drop_index("pools_one_per_subject_key", table_name="pools")
    op.drop_index("awards_live_by_overlap", table_name="awards")
    op.drop_index("awards_one_live_chain", table_name="awards")
    op.create_index("awards_one_live_chain", "awards", ["overlap_applicant", "overlap_subject", "overlap_milestone"],
                    unique=True, postgresql_where=sa.text("NOT revoked AND top_up_of IS NULL"))
    op.create_index("awards_live_by_overlap", "awards",
                    ["overlap_applicant", "overlap_subject", "overlap_milestone", "journal_seq"],
                    postgresql_where=sa.text("NOT revoked"))
    op.drop_table("subject_clashes")
    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries", "kind IN ('award', 'top_up', 'revocation')")
    op.drop_column("revocations", "redecides")
    for column in ("pool_accounts", "overlap_milestone", "overlap_key", "overlap_applicant"):
        op.drop_column("decisions", column)
    op.drop_column("awards", "overlap_key")
    op.drop_column("pools", "subject_key")
