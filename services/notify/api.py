"""Notify's public routes: the announcements (公示) as JSON and as a page a citizen reads.
The operators' delivery routes are the dispatcher's (dispatcher/api.py), the objections'
objections/api.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.notify import handlers
from services.notify.deps import SnapshotDep
from services.notify.schemas import (
    PAGE_HEADERS,
    AnnouncementLimit,
    AnnouncementPage,
    Cursor,
    NoticeStatus,
    Program,
    Year,
    render_announcements,
)
from shared.web.openapi import PUBLIC, problems

router = APIRouter(tags=["announcements"])


@dataclass(frozen=True)
class Listing:
    items: list[dict[str, Any]]
    next_cursor: str | None
    year: int | None
    program: str | None


async def listing(
    repo: SnapshotDep, year: Year = None, program: Program = None, status: NoticeStatus = None,
    cursor: Cursor = None, limit: AnnouncementLimit = 500,
) -> Listing:
    """The page of announcements a query asks for: the same for the JSON and for the page."""
    items, next_cursor = await handlers.list_announcements(
        repo, year=year, program=program, status=status, cursor=cursor, limit=limit
    )
    return Listing(items, next_cursor, year, program)


ListingDep = Annotated[Listing, Depends(listing)]


@router.get("/v1/announcements", response_model=AnnouncementPage, responses=problems(*PUBLIC))
async def list_announcements(found: ListingDep) -> dict[str, Any]:
    """Public, no credential: awards under public notice (公示) and final ones."""
    return {"items": found.items, "next_cursor": found.next_cursor}


@router.get("/announcements", response_class=HTMLResponse, responses=problems(*PUBLIC))
async def announcements_page(request: Request, found: ListingDep) -> HTMLResponse:
    next_page = None
    if found.next_cursor is not None:  # the same query, one page on
        next_page = "?" + urlencode({**request.query_params, "cursor": found.next_cursor})
    return HTMLResponse(
        render_announcements(found.items, year=found.year, program=found.program, next_page=next_page,
                             now=datetime.now(UTC)),
        headers=PAGE_HEADERS,
    )
