"""intake: pending_review, the review and objections in the projection

Revision ID: 0007

- `status` may be pending_review (a `required` program's award waiting for its 核定).
- `status_rank` is renumbered: pending_review sits between the assessment's statuses and the
  review's outcome (services.intake.domain.STATUS_RANK), so approved, partially_approved and
  rejected move from 2 to 3 and revoked from 3 to 4.
- `objections`: each objection's id and state (open, upheld, dismissed) — ids only, never who
  objected — from which `announcement.objections_open` is counted.
- Decisions and announcements projected before this get the keys the contract shows: a
  decision's `held` (what was awarded at once, before any revocation) and `review` (null); an
  announcement's `id` (unknown: null) and `objections_open` (0).

Downgrading refuses (the CHECK fails) while an application is pending_review.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD_STATUSES = "status IN ('received','ineligible','approved','partially_approved','rejected','revoked')"
_STATUSES = (
    "status IN ('received','ineligible','pending_review','approved','partially_approved','rejected','revoked')"
)


def upgrade() -> None:
    op.drop_constraint("applications_status_known", "applications", type_="check")
    op.create_check_constraint("applications_status_known", "applications", _STATUSES)
    op.add_column(
        "applications", sa.Column("objections", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"))
    )
    op.execute("UPDATE applications SET status_rank = status_rank + 1 WHERE status_rank >= 2")
    op.execute(
        "UPDATE applications SET decision = decision || jsonb_build_object("
        "'held', coalesce(nullif(decision->'revoked_awarded', 'null'::jsonb), decision->'awarded', "
        "to_jsonb('0.00'::text)), "
        "'review', NULL::jsonb) "
        "WHERE decision IS NOT NULL AND decision->'held' IS NULL"
    )
    op.execute(
        "UPDATE applications SET announcement = jsonb_build_object('id', NULL::jsonb, 'objections_open', 0) "
        "|| announcement WHERE announcement IS NOT NULL AND announcement->'objections_open' IS NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE applications SET announcement = announcement - 'id' - 'objections_open' WHERE announcement IS NOT NULL"
    )
    op.execute("UPDATE applications SET decision = decision - 'held' - 'review' WHERE decision IS NOT NULL")
    op.execute("UPDATE applications SET status_rank = status_rank - 1 WHERE status_rank >= 3")
    op.drop_column("applications", "objections")
    op.drop_constraint("applications_status_known", "applications", type_="check")
    op.create_check_constraint("applications_status_known", "applications", _OLD_STATUSES)
