"""The operators' dashboard (`GET /dashboard`): sign-in, balances against caps, recent decisions and
revocations, live updates over server-sent events, and revocation with a reason.

- Sign-in: POST /dashboard/login with the operator token (constant-time compare); the cookie holds an
  HMAC-signed session (services.ledger.sessions), HttpOnly, SameSite=Strict, Secure over https.
- Revoke: POST /dashboard/awards/{application_id}/revoke, cookie-authenticated and CSRF-checked (the
  session's token in the form, and a same-origin Origin when the browser sends one); it calls the same
  handler as `POST /v1/awards/{id}/revoke`, recorded as "operator:dashboard".
- Live: GET /dashboard/events polls the ledger tables every 0.5 s for decisions and revocations newer
  than the page's cursor, and streams them with the pools they touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import dashboard_page as page
from services.ledger.domain import PoolKey
from services.ledger.handlers import revoke_award
from services.ledger.journal.domain import pool_account
from services.ledger.repository import SqlLedgerRepository
from services.ledger.sessions import (
    COOKIE_NAME,
    SESSION_SECONDS,
    DashboardSession,
    csrf_ok,
    csrf_token,
    issue_session,
    read_session,
    signing_key,
)
from shared.kernel.errors import Conflict, NotFound
from shared.web.auth import same_secret

router = APIRouter(tags=["dashboard"], include_in_schema=False)

REVOKED_BY = "operator:dashboard"
POLL_SECONDS = 0.5
STREAM_MAX_SECONDS = 15 * 60  # then the browser reconnects (EventSource) from the last event id
LIVE_BATCH = 100
_HEADERS = {
    "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=_HEADERS)


def _key(request: Request) -> bytes:
    return signing_key(request.app.state.ctx.settings.operator_token)


def _session(request: Request) -> DashboardSession | None:
    return read_session(_key(request), request.cookies.get(COOKIE_NAME), time.time())


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _same_origin(request: Request) -> bool:
    """A cross-site form POST carries the attacker's Origin; SameSite=Strict already keeps our cookie off it."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:  # browsers that send it say exactly where the request came from
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


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
    response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
    response.set_cookie(COOKIE_NAME, value, max_age=SESSION_SECONDS, path="/dashboard", httponly=True,
                        samesite="strict", secure=_is_https(request))
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    form = await _form(request)
    if session is not None and not (csrf_ok(_key(request), session, form.get("csrf")) and _same_origin(request)):
        return _html(page.render_message("Not signed out", "The form was not sent from this dashboard."), 403)
    response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
    response.delete_cookie(COOKIE_NAME, path="/dashboard", httponly=True, samesite="strict",
                           secure=_is_https(request))
    return response


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    year = q.get("year", "")
    return {
        # isdigit() admits "²"; int() does not. NUL never reaches PostgreSQL (text refuses it).
        "year": int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None,
        "program": (q.get("program") or "").replace("\x00", "").strip()[:40] or None,
        "beneficiary": (q.get("beneficiary") or "").replace("\x00", "").strip()[:40] or None,
    }


def _where(filters: dict[str, Any], alias: str, program_expr: str) -> tuple[str, dict[str, Any]]:
    where, params = ["true"], {}
    if filters.get("year") is not None:
        where.append(f"{alias}year = :year")
        params["year"] = filters["year"]
    if filters.get("program"):
        where.append(f"{program_expr} = :program")
        params["program"] = filters["program"]
    if filters.get("beneficiary"):
        where.append(f"{alias}beneficiary = :beneficiary")
        params["beneficiary"] = filters["beneficiary"]
    return " AND ".join(where), params


_NAME = ("(SELECT d2.data->'applicant'->>'name' FROM decisions d2 WHERE d2.beneficiary = {b} "
         "ORDER BY d2.seq DESC LIMIT 1)")


async def _pools(session: AsyncSession, filters: dict[str, Any], accounts: list[str] | None = None,
                 limit: int = 200) -> list[dict[str, Any]]:
    where, params = _where(filters, "p.", "split_part(p.pool, '/', 1)")
    if accounts is not None:
        where += " AND p.account = ANY(CAST(:accounts AS text[]))"
        params["accounts"] = accounts
    rows = await session.execute(
        text(f"SELECT p.*, {_NAME.format(b='p.beneficiary')} AS name FROM pools p WHERE {where} "
             "ORDER BY CASE WHEN p.cap_fen = 0 THEN 1 ELSE p.committed_fen::numeric / p.cap_fen END DESC, "
             "p.cap_fen - p.committed_fen, p.account LIMIT :n"),
        {**params, "n": limit},
    )
    return [page.pool_row(r) for r in rows]


_DECISIONS = (
    "SELECT d.seq, d.application_id, d.program, d.beneficiary, d.year, d.status, d.awarded_fen, d.recorded_for, "
    "d.data->'applicant'->>'name' AS name, d.data->>'subject' AS subject, "
    "a.application_id IS NOT NULL AS has_award, coalesce(a.revoked, false) AS revoked, d.data->'draws' AS draws "
    "FROM decisions d LEFT JOIN awards a USING (application_id) WHERE {where} "
)
_REVOCATIONS = (
    "SELECT r.journal_seq, r.application_id, r.revoked_at, r.amount_fen, r.reason, r.revoked_by, "
    "a.program, a.beneficiary, a.year, a.draws, r.data->'applicant'->>'name' AS name "
    "FROM revocations r JOIN awards a USING (application_id) WHERE {where} "
)


async def _recent(session: AsyncSession, filters: dict[str, Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    dw, dp = _where(filters, "d.", "d.program")
    decisions = (await session.execute(
        text(_DECISIONS.format(where=dw) + "ORDER BY d.seq DESC LIMIT 50"), dp)).all()
    rw, rp = _where(filters, "a.", "a.program")
    revocations = (await session.execute(
        text(_REVOCATIONS.format(where=rw) + "ORDER BY r.journal_seq DESC LIMIT 50"), rp)).all()
    return decisions, revocations


async def _cursor(session: AsyncSession) -> str:
    row = (await session.execute(text(
        "SELECT coalesce((SELECT max(seq) FROM decisions), 0), coalesce((SELECT max(journal_seq) FROM revocations), 0)"
    ))).one()
    return f"{row[0]}.{row[1]}"


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _html(page.render_login())
    filters = _filters(request)
    async with request.app.state.ctx.maker() as db, db.begin():
        await db.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        cursor = await _cursor(db)
        pools = await _pools(db, filters)
        decisions, revocations = await _recent(db, filters)
        programs = list((await db.execute(text("SELECT DISTINCT program FROM decisions ORDER BY 1"))).scalars())
        years = list((await db.execute(text("SELECT DISTINCT year FROM decisions ORDER BY 1 DESC"))).scalars())
    q = request.query_params
    return _html(page.render_dashboard(
        pools=pools, decisions=[page.decision_row(r) for r in decisions],
        revocations=[page.revocation_row(r) for r in revocations], filters=filters, programs=programs,
        years=years, csrf=csrf_token(_key(request), session), cursor=cursor,
        notice=q.get("notice"), notice_app=(q.get("app") or "")[:100] or None,
    ))


@router.get("/dashboard/app.js")
async def app_js() -> Response:
    return Response(page.APP_JS, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------------------------------------
# Revoking
# ---------------------------------------------------------------------------------------------


@router.post("/dashboard/awards/{application_id}/revoke")
async def revoke(request: Request, application_id: str) -> Response:
    session = _session(request)
    if session is None:
        return _html(page.render_login("Sign in again: the session ended."), status_code=401)
    form = await _form(request)
    if not csrf_ok(_key(request), session, form.get("csrf")) or not _same_origin(request):
        return _html(page.render_message("Not revoked", "The form was not sent from this dashboard "
                                                        "(missing or wrong CSRF token)."), status_code=403)
    reason = form.get("reason", "")
    if not reason.strip() or len(reason) > 500:
        return _back("reason-required", application_id)
    ctx = request.app.state.ctx
    try:
        async with ctx.unit_of_work() as db:
            result = await revoke_award(SqlLedgerRepository(db), application_id, reason=reason, revoked_by=REVOKED_BY,
                                        now=datetime.now(UTC))
    except NotFound:
        return _back("not-found", application_id)
    except Conflict:
        return _back("not-revocable", application_id)
    return _back("revoked" if result.created else "already-revoked", application_id)


def _back(notice: str, application_id: str) -> Response:
    return RedirectResponse("/dashboard?" + urlencode({"notice": notice, "app": application_id[:100]}),
                            status_code=303, headers=_HEADERS)


# ---------------------------------------------------------------------------------------------
# Live updates (server-sent events)
# ---------------------------------------------------------------------------------------------


def _parse_cursor(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) < 19 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return (head + f"event: {event}\ndata: ").encode() + orjson.dumps(data) + b"\n\n"


def _accounts(draws: Any) -> list[str]:
    out = []
    for d in draws or []:
        if isinstance(d, dict) and "pool" in d:  # decision data: {"pool", "beneficiary", "year", "subject", ...}
            out.append(pool_account(PoolKey(d["pool"], d["beneficiary"], d.get("year"), d.get("subject"))))
        elif isinstance(d, dict) and "account" in d:  # award rows: {"account", "amount"}
            out.append(str(d["account"]))
    return out


async def _changes(request: Request, filters: dict[str, Any], cursor: tuple[int, int]
                   ) -> tuple[list[bytes], tuple[int, int]]:
    last_decision, last_revocation = cursor
    dw, dp = _where(filters, "d.", "d.program")
    rw, rp = _where(filters, "a.", "a.program")
    async with request.app.state.ctx.maker() as db, db.begin():
        await db.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        decisions = (await db.execute(
            text(_DECISIONS.format(where=dw + " AND d.seq > :after") + "ORDER BY d.seq LIMIT :n"),
            {**dp, "after": last_decision, "n": LIVE_BATCH})).all()
        revocations = (await db.execute(
            text(_REVOCATIONS.format(where=rw + " AND r.journal_seq > :after") + "ORDER BY r.journal_seq LIMIT :n"),
            {**rp, "after": last_revocation, "n": LIVE_BATCH})).all()
        if not decisions and not revocations:
            return [], cursor
        # A decision that skipped the filter still moves the cursor past it (the next poll starts after it).
        top = (await db.execute(text(
            "SELECT coalesce((SELECT max(seq) FROM decisions), 0), "
            "coalesce((SELECT max(journal_seq) FROM revocations), 0)"))).one()
        accounts = sorted({a for r in decisions for a in _accounts(r.draws)}
                          | {a for r in revocations for a in _accounts(r.draws)})
        pools = await _pools(db, filters, accounts=accounts, limit=500) if accounts else []
    new_cursor = (
        decisions[-1].seq if len(decisions) == LIVE_BATCH else max(last_decision, top[0]),
        revocations[-1].journal_seq if len(revocations) == LIVE_BATCH else max(last_revocation, top[1]),
    )
    event_id = f"{new_cursor[0]}.{new_cursor[1]}"
    out = [_sse("decision", page.decision_row(r)) for r in decisions]
    out += [_sse("revocation", page.revocation_row(r)) for r in revocations]
    out += [_sse("pool", p) for p in pools]
    out[-1] = out[-1].replace(b"event: ", f"id: {event_id}\nevent: ".encode(), 1)
    return out, new_cursor


@router.get("/dashboard/events")
async def events(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return Response("sign in first", status_code=401, media_type="text/plain")
    filters = _filters(request)
    cursor = _parse_cursor(request.headers.get("last-event-id")) or _parse_cursor(request.query_params.get("cursor"))
    if cursor is None:
        async with request.app.state.ctx.maker() as db:
            parsed = _parse_cursor(await _cursor(db))
        assert parsed is not None
        cursor = parsed

    async def stream() -> AsyncIterator[bytes]:
        nonlocal cursor
        assert cursor is not None
        yield b"retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_MAX_SECONDS
        quiet = 0.0
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            if session.expires <= time.time():
                yield _sse("bye", {"reason": "session expired"})
                return
            chunks, cursor = await _changes(request, filters, cursor)
            for chunk in chunks:
                yield chunk
            quiet = 0.0 if chunks else quiet + POLL_SECONDS
            if quiet >= 15:
                yield b": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
