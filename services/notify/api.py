"""Notify's public routes: the announcements (公示) as JSON and as a page a citizen reads.
The operators' delivery routes are the dispatcher's (dispatcher/api.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from services.notify import handlers
from services.notify.deps import SnapshotDep
from services.notify.schemas import (
    CONTENT_SECURITY_POLICY,
    AnnouncementLimit,
    AnnouncementPage,
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
    year: int | None
    program: str | None


async def listing(
    repo: SnapshotDep, year: Year = None, program: Program = None, status: NoticeStatus = None,
    limit: AnnouncementLimit = 500,
) -> Listing:
    """The announcements a query asks for: the same for the JSON and for the page."""
    items = await handlers.list_announcements(repo, year=year, program=program, status=status, limit=limit)
    return Listing(items, year, program)


ListingDep = Annotated[Listing, Depends(listing)]


@router.get("/v1/announcements", response_model=AnnouncementPage, responses=problems(*PUBLIC))
async def list_announcements(found: ListingDep) -> dict[str, Any]:
    """Public, no credential: awards under public notice (公示) and final ones."""
    return {"items": found.items}


@router.get("/announcements", response_class=HTMLResponse, responses=problems(*PUBLIC))
async def announcements_page(found: ListingDep) -> HTMLResponse:
    return HTMLResponse(
        render_announcements(found.items, year=found.year, program=found.program),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
