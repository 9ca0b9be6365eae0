"""The objections page's routes: cookies and forms in, handler calls out."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.notify.dashboard import schemas as page
from services.notify.dashboard.domain import (
    COOKIE_NAME,
    COOKIE_PATH,
    PAGE_PATH,
    PAGE_ROLES,
    SESSION_LABEL,
    Abilities,
    cursor_of,
    status_of,
)
from services.notify.dashboard.handlers import load_objections, resolve_from_page
from services.notify.deps import ContextDep
from services.notify.objections.repository import SqlObjectionsRepository
from services.notify.objections.schemas import ObjectionId, ResolveIn
from shared.web.sessions import StaffSession, csrf_token
from shared.web.staffpages import StaffSignIn, staff_nav, who_label

router = APIRouter(tags=["staff"], include_in_schema=False)

SIGN_IN = StaffSignIn(COOKIE_NAME, COOKIE_PATH, SESSION_LABEL, PAGE_ROLES, home=PAGE_PATH,
                      login_page=page.render_login, message_page=page.render_message, headers=page.HEADERS)
router.include_router(SIGN_IN.routes())


def _back(notice: str, objection_id: str) -> Response:
    return SIGN_IN.redirect(PAGE_PATH + "?" + urlencode({"notice": notice, "objection": objection_id[:100]}))


async def _signed_in(request: Request) -> tuple[StaffSession, Abilities] | None:
    """The session and what its principal may do here, or None (no session, or no one who may)."""
    signed = await SIGN_IN.signed_in(request)
    return None if signed is None else (signed[0], Abilities(signed[1]))


@router.get(PAGE_PATH, response_class=HTMLResponse)
async def objections_page(request: Request, ctx: ContextDep) -> Response:
    signed = await _signed_in(request)
    if signed is None:
        return SIGN_IN.html(page.render_login())
    session, can = signed
    q = request.query_params
    status = status_of(q)
    async with ctx.snapshot() as db:
        items, next_cursor = await load_objections(SqlObjectionsRepository(db), status=status, cursor=cursor_of(q),
                                                   sees_objector=can.sees_objector)
    return SIGN_IN.html(page.render_objections(
        objections=items, status=status, next_cursor=next_cursor, csrf=csrf_token(SIGN_IN.key(request), session),
        who=who_label(can.principal), nav=staff_nav(ctx.settings, "objections"), resolves=can.resolves,
        sees_objector=can.sees_objector, notice=q.get("notice"), notice_objection=(q.get("objection") or "")[:100] or None,
    ))


@router.post(PAGE_PATH + "/{objection_id}/resolve")
async def resolve(request: Request, objection_id: ObjectionId, ctx: ContextDep) -> Response:
    """A reviewer's resolution from the page: upheld or dismissed with a reason, validated as the
    API's body is, through the API's handler, recorded with the reviewer's id and name."""
    checked = await SIGN_IN.posted_form(request, "reviewer", "Not resolved")
    if isinstance(checked, Response):
        return checked
    principal, form = checked
    try:
        body = ResolveIn.model_validate({"outcome": form.get("outcome"), "reason": form.get("reason", "")})
    except ValidationError as exc:
        fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        return _back("outcome-required" if "outcome" in fields else "reason-required", objection_id)
    async with ctx.unit_of_work() as db:
        notice = await resolve_from_page(SqlObjectionsRepository(db), objection_id, outcome=body.outcome,
                                         reason=body.reason, by=principal.actor, now=datetime.now(UTC))
    return _back(notice, objection_id)
