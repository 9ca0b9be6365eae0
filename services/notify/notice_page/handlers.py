"""What the 公示 page reads: one page of announcements in its order (groups by program and
call, or support year for announcements without a call; newest first within), the filter options and the log size, all from one snapshot."""

from __future__ import annotations

from typing import Any

from services.notify import domain as notify
from services.notify.notice_page.domain import CURSOR_TAG, Filters, NoticePage, Position, groups_of
from services.notify.notice_page.repository import SqlNoticePageRepository
from shared.kernel.cursors import next_page, page_after
from shared.policy.catalog import load_catalog


def program_codes(selected: str | None) -> list[str]:
    """The program filter's options: the shipped catalog's programs in its order (and a program
    asked for that it does not know, so the form shows what is filtered)."""
    codes = [p.code for p in load_catalog().programs.values()]
    return [*codes, selected] if selected and selected not in codes else codes


async def load_page(repo: SqlNoticePageRepository, filters: Filters, *, cursor: str | None,
                    limit: int) -> NoticePage:
    """ValidationFailed (422 naming `cursor`) for a cursor this page did not hand out."""
    after = page_after(cursor, CURSOR_TAG, Position.parse)
    rows = await repo.page(filters, after, limit + 1)
    shown, next_cursor = next_page(
        rows, limit, CURSOR_TAG,
        lambda r: Position(r.year, r.program, r.call_id or "", r.published_at, r.application_id).key(),
    )
    items: list[dict[str, Any]] = [
        notify.public_announcement(
            announcement_id=r.id, applicant_name=r.applicant_name, program=r.program, year=r.year,
            subject=r.subject, amount_fen=r.amount_fen, published_at=r.published_at,
            notice_ends_at=r.notice_ends_at, finalized_at=r.finalized_at, objections_open=r.objections_open,
        ) | {"log_index": r.log_index, "amount_fen": r.amount_fen, "call_id": r.call_id, "call_title": r.call_title}
        for r in shown
    ]
    years = await repo.years()
    if filters.year is not None and filters.year not in years:
        years = sorted([*years, filters.year], reverse=True)
    return NoticePage(
        filters=filters, limit=limit, groups=groups_of(items, after), count=len(items), next_cursor=next_cursor,
        continues=after is not None, years=years, programs=program_codes(filters.program),
        log_size=await repo.log_size(),
    )
