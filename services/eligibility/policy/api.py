"""The policy's routes (CONTRACT.md, "Policy administration"): catalog versions and calls are
public to read; publishing a version and opening or closing a call is for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.eligibility.deps import AdminDep, ContextDep, PolicySnapshotDep
from services.eligibility.policy import handlers
from services.eligibility.policy.repository import PolicyRepository
from services.eligibility.policy.schemas import (
    CallId,
    CallPage,
    CallView,
    Cursor,
    LatestCatalog,
    Limit,
    OpenCall,
    OpenNow,
    ProgramCode,
    Published,
    PublishVersion,
    VersionPage,
    VersionPath,
    Year,
)
from shared.observability.logs import correlation_id
from shared.web.actions import ReasonBody
from shared.web.openapi import AUTHENTICATED, PUBLIC, problems

router = APIRouter(tags=["policy"])

_ADMIN = problems(400, *AUTHENTICATED)


@router.get("/v1/catalog", response_model=LatestCatalog, responses=problems(404, *PUBLIC))
async def latest_catalog(repo: PolicySnapshotDep) -> dict[str, Any]:
    """The latest catalog version, its document whole."""
    return await handlers.latest_catalog(repo)


@router.get("/v1/catalog/versions", response_model=VersionPage, response_model_exclude_unset=True, responses=problems(*PUBLIC))
async def catalog_versions(repo: PolicySnapshotDep, cursor: Cursor = None, limit: Limit = 50) -> VersionPage:
    """Every catalog version ever published, newest first, a page at a time (`next_cursor` asks for the next)."""
    items, next_cursor = await handlers.list_versions(repo, cursor=cursor, limit=limit)
    return VersionPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/v1/catalog/versions/{version}", responses=problems(404, *PUBLIC))
async def catalog_version(version: VersionPath, repo: PolicySnapshotDep) -> dict[str, Any]:
    """The document of a version, as published (its canonical JSON hashes to the version)."""
    return await handlers.catalog_document(repo, version)


@router.post("/v1/catalog/versions", status_code=201, response_model=Published, responses={
    200: {"description": "the same document was published before: its version", "model": Published}, **_ADMIN})
async def publish_version(body: PublishVersion, principal: AdminDep, ctx: ContextDep,
                          response: Response) -> Published:
    """Publish a catalog document (same schema as the shipped catalog.json) as a new version."""
    async with ctx.unit_of_work() as session:
        version, new = await handlers.publish_catalog(PolicyRepository(session), body.document, note=body.note,
                                                      published_by=principal.actor, correlation=correlation_id.get())
    if not new:
        response.status_code = 200
    return Published(version=version)


@router.post("/v1/calls", status_code=201, response_model=CallView, response_model_exclude_unset=True,
             responses=_ADMIN)
async def open_call(body: OpenCall, principal: AdminDep, ctx: ContextDep) -> dict[str, Any]:
    """Open a call for applications (申报批次) for one program and support year."""
    async with ctx.unit_of_work() as session:
        return await handlers.open_call(
            PolicyRepository(session), program=body.program, year=body.year, title=body.title,
            opens_at=body.opens_at, closes_at=body.closes_at, event_from=body.event_window.from_,
            event_to=body.event_window.to, catalog_version=body.catalog_version, budget_fen=body.budget_fen,
            opened_by=principal.actor, correlation=correlation_id.get(),
        )


@router.get("/v1/calls", response_model=CallPage, response_model_exclude_unset=True, responses=problems(*PUBLIC))
async def list_calls(repo: PolicySnapshotDep, program: ProgramCode = None, year: Year = None,
                     open_now: OpenNow = None, cursor: Cursor = None, limit: Limit = 50) -> CallPage:
    """Calls, newest first, a page at a time (`next_cursor` asks for the next); `open=true` those
    open now."""
    items, next_cursor = await handlers.list_calls(repo, program=program, year=year, open_now=open_now, cursor=cursor,
                                                   limit=limit)
    return CallPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/v1/calls/{call_id}", response_model=CallView, response_model_exclude_unset=True,
            responses=problems(404, *PUBLIC))
async def get_call(call_id: CallId, repo: PolicySnapshotDep) -> dict[str, Any]:
    return await handlers.get_call(repo, call_id)


@router.post("/v1/calls/{call_id}/close", response_model=CallView, response_model_exclude_unset=True,
             responses=problems(404, 400, *AUTHENTICATED))
async def close_call(call_id: CallId, body: ReasonBody, principal: AdminDep, ctx: ContextDep) -> dict[str, Any]:
    """Close a call now: no application received from this moment is accepted."""
    async with ctx.unit_of_work() as session:
        return await handlers.close_call(PolicyRepository(session), call_id, closed_by=principal.actor,
                                         reason=body.reason, correlation=correlation_id.get())
