"""Notify's public routes: the announcements (公示) as JSON and as a page a citizen reads, and the
open data (every finalized award as CSV). The operators' delivery routes are the dispatcher's
(dispatcher/api.py), the objections' objections/api.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, StreamingResponse

from services.notify import handlers
from services.notify.deps import ContextDep, SnapshotDep
from services.notify.notice_page import handlers as notice_page
from services.notify.notice_page.domain import MAX_PAGE_SIZE, PAGE_PATH, read_filters, read_limit
from services.notify.notice_page.repository import SqlNoticePageRepository
from services.notify.notice_page.schemas import render_notice_page, render_refused
from services.notify.opendata.domain import FILENAME
from services.notify.opendata.handlers import final_awards_csv
from services.notify.schemas import (
    PAGE_HEADERS,
    AnnouncementLimit,
    AnnouncementPage,
    Cursor,
    NoticeStatus,
    Program,
    Year,
)
from shared.kernel.errors import ValidationFailed
from shared.web.deps import snapshot_of
from shared.web.openapi import NO_NUL, PUBLIC, problems

router = APIRouter(tags=["announcements"])


@dataclass(frozen=True)
class Listing:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def listing(
    repo: SnapshotDep, year: Year = None, program: Program = None, status: NoticeStatus = None,
    cursor: Cursor = None, limit: AnnouncementLimit = 500,
) -> Listing:
    items, next_cursor = await handlers.list_announcements(
        repo, year=year, program=program, status=status, cursor=cursor, limit=limit
    )
    return Listing(items, next_cursor)


ListingDep = Annotated[Listing, Depends(listing)]


@router.get("/v1/announcements", response_model=AnnouncementPage, responses=problems(*PUBLIC))
async def list_announcements(found: ListingDep) -> dict[str, Any]:
    """Public, no credential: awards under public notice (公示) and final ones."""
    return {"items": found.items, "next_cursor": found.next_cursor}


# The page's filters come from a GET form whose "all" options send empty values: read as text,
# an empty or unknown value is no filter (notice_page.domain.read_filters).
_FormText = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
PageRepoDep = Annotated[SqlNoticePageRepository, snapshot_of(SqlNoticePageRepository)]


@router.get(PAGE_PATH, response_class=HTMLResponse, responses=problems(*PUBLIC))
async def announcements_page(
    repo: PageRepoDep, year: _FormText = None, program: _FormText = None, status: _FormText = None,
    cursor: Cursor = None, limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)] = None,
) -> HTMLResponse:
    """The 公示 page: grouped by program and support year, Beijing time, 万元, the form to object
    while a notice runs, filters and pages; no script."""
    try:
        found = await notice_page.load_page(repo, read_filters(year, program, status), cursor=cursor,
                                            limit=read_limit(limit))
    except ValidationFailed as refused:
        return HTMLResponse(render_refused(refused.detail), status_code=422, headers=PAGE_HEADERS)
    return HTMLResponse(render_notice_page(found, now=datetime.now(UTC)), headers=PAGE_HEADERS)


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "UTF-8 CSV with a byte order mark, a header row of column names",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
}


@router.get("/v1/open-data/awards.csv", response_class=StreamingResponse, tags=["open data"],
            responses={**_CSV, **problems(503)})
async def open_data_awards(ctx: ContextDep) -> StreamingResponse:
    """Public, no credential: every finalized award (applicant name and unified social credit
    code, program code and Chinese name, policy document 文号, subject, amount in yuan with two
    decimals, support year, finalized date in Beijing time, transparency log indices), in the
    order the log finalized them. Columns: announcement_id, applicant_name, applicant_code,
    program_code, program_name, policy_document, subject, amount_yuan, year, finalized_date,
    log_index, finalized_log_index (new columns only ever at the end). Streamed from one snapshot."""
    return StreamingResponse(
        final_awards_csv(ctx.snapshot),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{FILENAME}"'},
    )
