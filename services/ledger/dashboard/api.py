"""The dashboard's routes: cookies, forms and server-sent events in, handler calls out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from services.ledger.dashboard import schemas as page
from services.ledger.dashboard.domain import (
    COOKIE_NAME,
    SESSION_SECONDS,
    DashboardSession,
    LiveCursor,
    csrf_ok,
    csrf_token,
    filters_of,
    issue_session,
    read_session,
    reason_accepted,
    same_origin,
    signing_key,
)
from services.ledger.dashboard.handlers import load_changes, load_page, revoke_from_dashboard
from services.ledger.dashboard.repository import DashboardRepository
from services.ledger.deps import ContextDep
from services.ledger.repository import SqlLedgerRepository
from shared.web.auth import same_secret

router = APIRouter(tags=["dashboard"], include_in_schema=False)

POLL_SECONDS = 0.5
STREAM_MAX_SECONDS = 15 * 60  # then the browser reconnects (EventSource) from the last event id


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=page.HEADERS)


def _key(request: Request) -> bytes:
    return signing_key(request.app.state.ctx.settings.operator_token)


def _session(request: Request) -> DashboardSession | None:
    return read_session(_key(request), request.cookies.get(COOKIE_NAME), time.time())


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _same_origin(request: Request) -> bool:
    return same_origin(request.headers.get("sec-fetch-site"), request.headers.get("origin"),
                       request.headers.get("host", ""))


async def _form(request: Request) -> dict[str, str]:
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    raw = await request.body()
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items()}


# ---------------------------------------------------------------------------------------------
# Sign-in
# ---------------------------------------------------------------------------------------------


@router.post("/dashboard/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    token = form.get("token", "")
    if not token or not same_secret(token, request.app.state.ctx.settings.operator_token):
        return _html(page.render_login("That token was not accepted."), status_code=401)
    value, _ = issue_session(_key(request), time.time())
    response = RedirectResponse("/dashboard", status_code=303, headers=page.HEADERS)
    response.set_cookie(COOKIE_NAME, value, max_age=SESSION_SECONDS, path="/dashboard", httponly=True,
                        samesite="strict", secure=_is_https(request))
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    form = await _form(request)
    if session is not None and not (csrf_ok(_key(request), session, form.get("csrf")) and _same_origin(request)):
        return _html(page.render_message("Not signed out", "The form was not sent from this dashboard."), 403)
    response = RedirectResponse("/dashboard", status_code=303, headers=page.HEADERS)
    response.delete_cookie(COOKIE_NAME, path="/dashboard", httponly=True, samesite="strict",
                           secure=_is_https(request))
    return response


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _shown_filters(request: Request) -> dict[str, Any]:
    f = filters_of(request.query_params)
    return {"year": f.year, "program": f.program, "beneficiary": f.beneficiary}


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: ContextDep) -> Response:
    session = _session(request)
    if session is None:
        return _html(page.render_login())
    filters = filters_of(request.query_params)
    async with ctx.snapshot() as db:
        loaded = await load_page(DashboardRepository(db), filters)
    q = request.query_params
    return _html(page.render_dashboard(
        pools=[page.pool_row(p) for p in loaded.pools], decisions=[page.decision_row(r) for r in loaded.decisions],
        revocations=[page.revocation_row(r) for r in loaded.revocations], filters=_shown_filters(request),
        programs=loaded.programs, years=loaded.years, csrf=csrf_token(_key(request), session),
        cursor=str(loaded.cursor), notice=q.get("notice"), notice_app=(q.get("app") or "")[:100] or None,
    ))


@router.get("/dashboard/app.js")
async def app_js() -> Response:
    return Response(page.APP_JS, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------------------------------------
# Revoking
# ---------------------------------------------------------------------------------------------


@router.post("/dashboard/awards/{application_id}/revoke")
async def revoke(request: Request, application_id: str, ctx: ContextDep) -> Response:
    session = _session(request)
    if session is None:
        return _html(page.render_login("Sign in again: the session ended."), status_code=401)
    form = await _form(request)
    if not csrf_ok(_key(request), session, form.get("csrf")) or not _same_origin(request):
        return _html(page.render_message("Not revoked", "The form was not sent from this dashboard "
                                                        "(missing or wrong CSRF token)."), status_code=403)
    reason = form.get("reason", "")
    if not reason_accepted(reason):
        return _back("reason-required", application_id)
    async with ctx.unit_of_work() as db:
        notice = await revoke_from_dashboard(SqlLedgerRepository(db), application_id, reason=reason,
                                             now=datetime.now(UTC))
    return _back(notice, application_id)


def _back(notice: str, application_id: str) -> Response:
    return RedirectResponse("/dashboard?" + urlencode({"notice": notice, "app": application_id[:100]}),
                            status_code=303, headers=page.HEADERS)


# ---------------------------------------------------------------------------------------------
# Live updates (server-sent events)
# ---------------------------------------------------------------------------------------------


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return (head + f"event: {event}\ndata: ").encode() + orjson.dumps(data) + b"\n\n"


@router.get("/dashboard/events")
async def events(request: Request, ctx: ContextDep) -> Response:
    session = _session(request)
    if session is None:
        return Response("sign in first", status_code=401, media_type="text/plain")
    filters = filters_of(request.query_params)
    cursor = LiveCursor.parse(request.headers.get("last-event-id")) or LiveCursor.parse(
        request.query_params.get("cursor"))
    if cursor is None:
        async with ctx.snapshot() as db:
            cursor = await DashboardRepository(db).newest()

    async def changes(since: LiveCursor) -> tuple[list[bytes], LiveCursor]:
        async with ctx.snapshot() as db:
            found = await load_changes(DashboardRepository(db), filters, since)
        if found is None:
            return [], since
        out = [_sse("decision", page.decision_row(r)) for r in found.decisions]
        out += [_sse("revocation", page.revocation_row(r)) for r in found.revocations]
        out += [_sse("pool", page.pool_row(p)) for p in found.pools]
        # The last message carries the new cursor: a reconnecting browser resumes after it.
        out[-1] = out[-1].replace(b"event: ", f"id: {found.cursor}\nevent: ".encode(), 1)
        return out, found.cursor

    async def stream() -> AsyncIterator[bytes]:
        since = cursor
        yield b"retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_MAX_SECONDS
        quiet = 0.0
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            if session.expires <= time.time():
                yield _sse("bye", {"reason": "session expired"})
                return
            chunks, since = await changes(since)
            for chunk in chunks:
                yield chunk
            quiet = 0.0 if chunks else quiet + POLL_SECONDS
            if quiet >= 15:
                yield b": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
