"""Objection routes: filing (public, JSON; and the 公示 page's form, answered with a page),
the staff list, and a reviewer's resolution. They only translate HTTP into handler calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.notify.deps import (
    ContextDep,
    ObjectionRateDep,
    ObjectionsSnapshotDep,
    ReviewerDep,
    ReviewQueueReaderDep,
    limit_objections,
)
from services.notify.objections import handlers
from services.notify.objections.domain import Objection
from services.notify.objections.repository import SqlObjectionsRepository
from services.notify.objections.schemas import (
    AnnouncementId,
    Cursor,
    ObjectionAccepted,
    ObjectionId,
    ObjectionIn,
    ObjectionLimit,
    ObjectionPage,
    ObjectionStatusQuery,
    Resolved,
    ResolveIn,
    render_answer,
)
from services.notify.schemas import PAGE_HEADERS
from shared.kernel.errors import Problem, UnsupportedMediaType
from shared.web.openapi import AUTHENTICATED, PUBLIC, problems

router = APIRouter(tags=["objections"])

_FORM = "application/x-www-form-urlencoded"


async def _file(ctx: ContextDep, announcement_id: str, body: ObjectionIn) -> str:
    objection = Objection(name=body.name, contact=body.contact, statement=body.statement,
                          organisation=body.organisation)
    async with ctx.unit_of_work() as session:
        return await handlers.file_objection(SqlObjectionsRepository(session), announcement_id, objection,
                                             now=datetime.now(UTC))


@router.post(
    "/v1/announcements/{announcement_id}/objections", status_code=202, response_model=ObjectionAccepted,
    responses=problems(*PUBLIC, 400, 404, 409, 429),
)
async def file_objection(
    announcement_id: AnnouncementId, _: ObjectionRateDep, body: ObjectionIn, ctx: ContextDep
) -> dict[str, Any]:
    """Public, no credential: an objection (异议) to an announcement while its notice runs. The
    name and contact go to the reviewing office only and are never published."""
    return {"id": await _file(ctx, announcement_id, body), "status": "open"}


@router.post("/announcements/{announcement_id}/objections", response_class=HTMLResponse, include_in_schema=False)
async def file_objection_from_page(announcement_id: AnnouncementId, request: Request, ctx: ContextDep) -> HTMLResponse:
    """The 公示 page's form (form-encoded, no script): the same filing, answered with a page."""
    status, retry_after = 202, None
    objection_id, detail, field_problems = None, "", []
    try:
        limit_objections(request)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
            raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
        fields = _form_fields(await request.body())
        body = ObjectionIn.model_validate(fields)
        objection_id = await _file(ctx, announcement_id, body)
    except ValidationError as exc:
        status = 422
        field_problems = [(str(e["loc"][0]) if e["loc"] else "body", str(e["msg"])) for e in exc.errors()]
    except Problem as problem:
        status, detail = problem.status, problem.detail
        retry_after = problem.headers.get("Retry-After")
    headers = dict(PAGE_HEADERS)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return HTMLResponse(
        render_answer(status, objection_id=objection_id, detail=detail, problems=field_problems),
        status_code=status, headers=headers,
    )


def _form_fields(raw: bytes) -> dict[str, str]:
    """The form's fields (the first value of each); none from a body that is not UTF-8 form data."""
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return {}  # then every required field is missing, and named
    return {name: values[0] for name, values in parsed.items() if name in ObjectionIn.model_fields}


@router.get("/v1/objections", response_model=ObjectionPage, response_model_exclude_unset=True,
            responses=problems(*AUTHENTICATED))
async def list_objections(
    principal: ReviewQueueReaderDep, repo: ObjectionsSnapshotDep, status: ObjectionStatusQuery = None,
    cursor: Cursor = None, limit: ObjectionLimit = 50,
) -> dict[str, Any]:
    """Objections, oldest first (reviewer, operator, auditor). The objector's name, organisation
    and contact are shown to reviewers only (null for the others)."""
    items, next_cursor = await handlers.list_objections(
        repo, status=status, cursor=cursor, limit=limit, sees_objector="reviewer" in principal.roles
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/objections/{objection_id}/resolve", response_model=Resolved, response_model_exclude_unset=True,
    responses=problems(*AUTHENTICATED, 400, 404, 409),
)
async def resolve_objection(
    objection_id: ObjectionId, body: ResolveIn, principal: ReviewerDep, ctx: ContextDep
) -> dict[str, Any]:
    """A reviewer resolves an open objection once: upheld (the ledger revokes the award) or
    dismissed (the award is final at once if this was its last open objection and the notice
    has ended). A second resolution answers 409."""
    async with ctx.unit_of_work() as session:
        return await handlers.resolve_objection(
            SqlObjectionsRepository(session), objection_id, outcome=body.outcome, reason=body.reason,
            by=principal.actor, now=datetime.now(UTC),
        )
