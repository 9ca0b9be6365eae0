"""Every SQL statement of the open data: finalized awards a page at a time, in the order the
transparency log finalized them (keyset on the log's primary key, so each page is an index range
and a later download only adds rows at the end)."""

from __future__ import annotations

from sqlalchemy import text

from services.notify.opendata.domain import FinalAward
from shared.db.repository import Repository

# Every finalisation is logged in the transaction that makes it (finaliser/handlers.py), and the
# announcements from before the log were logged by migration 0006: a final award has its entry.
# A revoked one (withdrawn after it was final) is no award any more and is left out.
_PAGE = text(
    "SELECT f.index AS finalized_log_index, a.id, a.applicant_name, a.applicant_id, a.program, a.subject, "
    "a.amount_fen, a.year, a.finalized_at, p.index AS log_index "
    "FROM transparency_leaves f JOIN announcements a ON a.id = f.announcement_id "
    "LEFT JOIN transparency_leaves p ON p.announcement_id = a.id AND p.kind = 'published' "
    "WHERE f.kind = 'finalized' AND f.index > :after AND a.finalized_at IS NOT NULL AND a.withdrawn_at IS NULL "
    "ORDER BY f.index LIMIT :lim"
)


class SqlOpenDataRepository(Repository):
    async def final_awards(self, *, after: int, limit: int) -> list[FinalAward]:
        """Finalized awards whose finalisation entry comes after `after` (-1: from the first)."""
        rows = await self.session.execute(_PAGE, {"after": after, "lim": limit})
        return [
            FinalAward(
                announcement_id=r.id, applicant_name=r.applicant_name, applicant_code=r.applicant_id,
                program=r.program, subject=r.subject, amount_fen=r.amount_fen, year=r.year,
                finalized_at=r.finalized_at, log_index=r.log_index, finalized_log_index=r.finalized_log_index,
            )
            for r in rows
        ]
