"""Every SQL statement of the 公示 page: a page of announcements in the page's order, the years
there are announcements for (the year filter's options) and the transparency log's size (the
inclusion proofs the page links to). A call's title comes from notify's replica of the calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, text

from services.notify.notice_page.domain import Filters, Position
from services.notify.transparency.repository import SqlTransparencyRepository
from shared.db.repository import Repository

# Year, program and call descending (no call is '': last in its program's year), then newest
# first: a backward scan of announcements_by_call (year, program, coalesce(call_id, ''),
# published_at), the application id breaking ties among rows of one instant.
_CALL = "coalesce(a.call_id, '')"
_ORDER = f"a.year DESC, a.program DESC, {_CALL} DESC, a.published_at DESC, a.application_id"
_AFTER = (
    f"((a.year, a.program, {_CALL}, a.published_at) < (:y, :p, :c, :at) "
    f"OR ((a.year, a.program, {_CALL}, a.published_at) = (:y, :p, :c, :at) AND a.application_id > :after_id))"
)

# The distinct years by a skip scan of an index led by the year: one index probe per year, however
# many announcements each has.
_YEARS = text(
    "WITH RECURSIVE y(year) AS ("
    "(SELECT year FROM announcements ORDER BY year DESC LIMIT 1) "
    "UNION ALL "
    "SELECT (SELECT a.year FROM announcements a WHERE a.year < y.year ORDER BY a.year DESC LIMIT 1) "
    "FROM y WHERE y.year IS NOT NULL) "
    "SELECT year FROM y WHERE year IS NOT NULL"
)


class SqlNoticePageRepository(Repository):
    async def page(self, filters: Filters, after: Position | None, limit: int) -> Sequence[Row[Any]]:
        """Announcements on the public notice (a revoked award leaves it) that `filters` admit,
        in the page's order, from just after `after`, at most `limit`."""
        where = ["a.withdrawn_at IS NULL"]
        params: dict[str, Any] = {"lim": limit}
        if filters.year is not None:
            where.append("a.year = :year")
            params["year"] = filters.year
        if filters.program:
            where.append("a.program = :program")
            params["program"] = filters.program
        if filters.status == "final":
            where.append("a.finalized_at IS NOT NULL")
        elif filters.status == "under_notice":
            where.append("a.finalized_at IS NULL")
        if after is not None:
            where.append(_AFTER)
            params |= {"y": after.year, "p": after.program, "c": after.call, "at": after.published_at,
                       "after_id": after.application_id}
        result = await self.session.execute(
            text(
                "SELECT a.id, a.application_id, a.applicant_name, a.program, a.year, a.subject, a.amount_fen, "
                "a.published_at, a.notice_ends_at, a.finalized_at, a.objections_open, l.index AS log_index, "
                "a.call_id, c.title AS call_title "
                "FROM announcements a LEFT JOIN transparency_leaves l ON l.announcement_id = a.id "
                "AND l.kind = 'published' LEFT JOIN calls c ON c.id = a.call_id "
                f"WHERE {' AND '.join(where)} ORDER BY {_ORDER} LIMIT :lim"
            ),
            params,
        )
        return result.all()

    async def years(self) -> list[int]:
        """The support years with an announcement, newest first."""
        return [int(y) for y in (await self.session.execute(_YEARS)).scalars()]

    async def log_size(self) -> int:
        return await SqlTransparencyRepository(self.session).size()
