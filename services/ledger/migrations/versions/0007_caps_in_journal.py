"""ledger: caps in the journal (cap_open, cap_amend), whether each pool's cap is journaled, and
verify's own checkpoints (append-only)

A pool's cap was only in `pools.cap_fen`, where a one-fen edit went unnoticed. From here the first
decision that uses a pool journals its cap (services.ledger.journal.domain, "Caps"). Pools opened
before this migration get theirs here: one `cap_open` entry each, in lock order, chained after the
head as it stands, recorded for the pool's creation time, with the event id `migration:0007`. So
`/v1/audit/verify` re-derives every cap on an upgraded ledger too.

Revision ID: 0007
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.ledger.domain import lock_order
from services.ledger.journal.domain import (
    JournalHead,
    build_entry,
    cap_open_postings,
    parse_pool_account,
    pool_account,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BACKFILL_EVENT_ID = "migration:0007"
_KINDS_BEFORE = "kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', 'release', 'rejection')"
_KINDS = ("kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', 'release', 'rejection', "
          "'cap_open', 'cap_amend')")


def upgrade() -> None:
    op.drop_constraint("journal_kind", "journal_entries", type_="check")
    op.create_check_constraint("journal_kind", "journal_entries", _KINDS)
    op.add_column("pools", sa.Column("cap_journaled", sa.Boolean, nullable=False, server_default=sa.false()))
    _journal_existing_caps()

    # Verify's checkpoints: where a verify that found everything intact ended (seq and hash) and the
    # totals it derived per pool account ({"pool:…": [cap, committed]}), so a later verify can start
    # there. Append-only like the journal: a checkpoint is a statement about the past.
    op.create_table(
        "verify_checkpoints",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("totals", JSONB, nullable=False),
        sa.Column("from_genesis", sa.Boolean, nullable=False),  # a full run, or one from an earlier checkpoint
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("seq >= 0", name="verify_checkpoints_seq"),
        sa.CheckConstraint("jsonb_typeof(totals) = 'object'", name="verify_checkpoints_totals"),
    )
    op.create_index("verify_checkpoints_seq", "verify_checkpoints", ["seq"])
    op.execute(
        "CREATE TRIGGER verify_checkpoints_append_only BEFORE UPDATE OR DELETE ON verify_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION journal_append_only()"
    )
    op.execute(
        "CREATE TRIGGER verify_checkpoints_no_truncate BEFORE TRUNCATE ON verify_checkpoints "
        "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
    )


def _journal_existing_caps() -> None:
    bind = op.get_bind()
    row = bind.execute(sa.text("SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE")).one()
    head = JournalHead(row.seq, row.hash)
    pools = {parse_pool_account(r.account): (r.cap_fen, r.created_at)
             for r in bind.execute(sa.text("SELECT account, cap_fen, created_at FROM pools"))}
    if not pools:
        return
    entries = []
    for key in lock_order(pools):
        cap_fen, created_at = pools[key]
        entry = build_entry(seq=head.seq + 1, prev_hash=head.hash, kind="cap_open", application_id=pool_account(key),
                            event_id=BACKFILL_EVENT_ID, postings=cap_open_postings(key, cap_fen),
                            recorded_for=created_at.astimezone(UTC).isoformat())
        entries.append(entry)
        head = JournalHead(entry.seq, entry.hash)
    journal = sa.table("journal_entries", sa.column("seq"), sa.column("kind"), sa.column("application_id"),
                       sa.column("event_id"), sa.column("postings", JSONB), sa.column("prev_hash"), sa.column("hash"),
                       sa.column("recorded_for"))
    op.bulk_insert(journal, [
        {"seq": e.seq, "kind": e.kind, "application_id": e.application_id, "event_id": e.event_id,
         "postings": [p.to_canonical() for p in e.postings], "prev_hash": e.prev_hash, "hash": e.hash,
         "recorded_for": e.recorded_for}
        for e in entries
    ])
    bind.execute(sa.text("UPDATE journal_head SET seq = :s, hash = :h WHERE id = 1"), {"s": head.seq, "h": head.hash})
    bind.execute(sa.text("UPDATE pools SET cap_journaled = true"))


def downgrade() -> None:
    # The cap entries stay (the journal is append-only); the kinds they need stay allowed.
    op.drop_table("verify_checkpoints")
    op.drop_column("pools", "cap_journaled")
    has_caps = op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM journal_entries "
                                            "WHERE kind IN ('cap_open', 'cap_amend'))"))
    if not has_caps:
        op.drop_constraint("journal_kind", "journal_entries", type_="check")
        op.create_check_constraint("journal_kind", "journal_entries", _KINDS_BEFORE)
