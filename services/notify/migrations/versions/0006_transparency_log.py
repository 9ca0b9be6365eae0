"""notify: the transparency log (RFC 9162 Merkle log of published, withdrawn and finalized
announcements): its leaves and the hashes of its complete subtrees

Revision ID: 0006
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.notify.domain import public_announcement
from services.notify.transparency import domain

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
    _log_existing_announcements()


def _log_existing_announcements() -> None:
    """Announcements from before the log: their publications, withdrawals and finalisations are
    logged now, in the order they happened, so every announcement on the notice has a
    log_index. Entries as the service makes them (services.notify.transparency.handlers.entry_for)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, application_id, applicant_name, program, year, subject, amount_fen, published_at, "
        "notice_ends_at, finalized_at, objections_open, withdrawn_at, published_event_id, withdrawn_event_id, "
        "finalized_event_id FROM announcements"
    )).all()
    changes = []
    for r in rows:
        utc = {k: getattr(r, k).astimezone(UTC) if getattr(r, k) is not None else None
               for k in ("published_at", "notice_ends_at", "finalized_at", "withdrawn_at")}
        public = public_announcement(
            announcement_id=r.id, applicant_name=r.applicant_name, program=r.program, year=r.year,
            subject=r.subject, amount_fen=r.amount_fen, published_at=utc["published_at"],
            notice_ends_at=utc["notice_ends_at"], finalized_at=utc["finalized_at"], objections_open=r.objections_open,
        )
        changes.append((utc["published_at"], 0, r.application_id,
                        domain.announcement_entry("published", r.published_event_id, public)))
        if r.withdrawn_at is not None and r.withdrawn_event_id is not None:
            changes.append((utc["withdrawn_at"], 1, r.application_id, domain.announcement_entry(
                "withdrawn", r.withdrawn_event_id, public, at=utc["withdrawn_at"].isoformat())))
        if r.finalized_at is not None and r.finalized_event_id is not None:
            changes.append((utc["finalized_at"], 2, r.application_id, domain.announcement_entry(
                "finalized", r.finalized_event_id, public, at=utc["finalized_at"].isoformat())))
    changes.sort(key=lambda c: (c[0], c[1], c[2]))
    entries = domain.unlogged([c[3] for c in changes], set())
    if not entries:
        return
    hashes = [domain.leaf_hash(e.entry) for e in entries]
    bind.execute(
        sa.text("INSERT INTO transparency_leaves (index, entry, leaf_hash, announcement_id, kind, event_id) "
                "VALUES (:i, :e, :h, :a, :k, :ev)"),
        [{"i": i, "e": e.entry, "h": h, "a": e.announcement_id, "k": e.kind, "ev": e.event_id}
         for i, (e, h) in enumerate(zip(entries, hashes, strict=True))],
    )
    nodes = domain.appended_nodes(0, [], hashes)
    if nodes:
        bind.execute(sa.text("INSERT INTO transparency_nodes (level, index, hash) VALUES (:l, :i, :h)"),
                     [{"l": n.level, "i": n.index, "h": n.hash} for n in nodes])


def downgrade() -> None:
    op.drop_table("transparency_nodes")
    op.drop_index("transparency_leaves_announcement", "transparency_leaves")
    op.drop_table("transparency_leaves")
