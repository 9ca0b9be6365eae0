"""The dashboard's routes: cookies, forms and server-sent events in, handler calls out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from services.ledger.dashboard import schemas as page
from services.ledger.dashboard.charts import call_budget_chart, pool_usage_chart, program_months_chart
from services.ledger.dashboard.domain import (
    COOKIE_NAME,
    DASHBOARD_ROLES,
    SESSION_LABEL,
    Abilities,
    LiveCursor,
    cursor_int,
    cursor_text,
    filters_of,
    reason_accepted,
    search_of,
)
from services.ledger.dashboard.handlers import (
    PAGE_ROWS,
    Paging,
    load_changes,
    load_page,
    review_from_dashboard,
    revoke_from_dashboard,
)
from services.ledger.dashboard.repository import DashboardRepository
from services.ledger.deps import ContextDep
from services.ledger.exports.api import EXPORT_ROLES, export_response
from services.ledger.exports.domain import EXPORTS, FORMATS, ExportQuery
from services.ledger.repository import SqlLedgerRepository
from services.ledger.reviews.domain import APPROVE, REJECT
from services.ledger.reviews.repository import SqlReviewRepository
from shared.kernel.money import AmountError, parse_amount
from shared.web.sessions import StaffSession, csrf_token
from shared.web.staffpages import StaffSignIn, staff_nav, who_label

router = APIRouter(tags=["dashboard"], include_in_schema=False)

POLL_SECONDS = 0.5
STREAM_MAX_SECONDS = 15 * 60  # then the browser reconnects (EventSource) from the last event id
RECHECK_POLLS = 6  # a live stream asks again every 3 s whether who opened it may still see it

SIGN_IN = StaffSignIn(COOKIE_NAME, "/dashboard", SESSION_LABEL, DASHBOARD_ROLES, home="/dashboard",
                      login_page=page.render_login, message_page=page.render_message, headers=page.HEADERS)
router.include_router(SIGN_IN.routes())


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=page.HEADERS)


async def _signed_in(request: Request) -> tuple[StaffSession, Abilities] | None:
    """The session and what its principal may do here, or None (no session, or no one who may)."""
    signed = await SIGN_IN.signed_in(request)
    return None if signed is None else (signed[0], Abilities(signed[1]))


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _shown_filters(request: Request) -> dict[str, Any]:
    f = filters_of(request.query_params)
    return {"year": f.year, "program": f.program, "beneficiary": f.beneficiary}


def _paging(q: Any) -> Paging:
    batches = cursor_text(q, "batches_before")
    stamp, _, batch_id = (batches or "").partition("|")
    try:
        batches_before = (datetime.fromisoformat(stamp).isoformat(), batch_id) if batches and batch_id else None
    except ValueError:
        batches_before = None
    return Paging(reviews_after=cursor_int(q, "reviews_after"), pools_after=cursor_text(q, "pools_after"),
                  decisions_before=cursor_int(q, "decisions_before"),
                  revocations_before=cursor_int(q, "revocations_before"), batches_before=batches_before,
                  orders_after=cursor_text(q, "orders_after"), applicants_after=cursor_text(q, "applicants_after"))


# What a page link carries on: the filters, the search and each table's cursor.
_KEPT = ("year", "program", "beneficiary", "q", "rows", "reviews_after", "pools_after", "decisions_before",
         "revocations_before", "batches_before", "orders_after", "applicants_after")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: ContextDep) -> Response:
    signed = await _signed_in(request)
    if signed is None:
        return _html(page.render_login())
    session, can = signed
    q = request.query_params
    filters, search = filters_of(q), search_of(q)
    async with ctx.snapshot() as db:
        loaded = await load_page(DashboardRepository(db), filters, activity=can.sees_activity,
                                 ledger=can.sees_ledger, payments=can.sees_payments, paging=_paging(q),
                                 search=search, limit=min(max(cursor_int(q, "rows") or PAGE_ROWS, 1), 200))
    charts = None
    if loaded.charts is not None:
        c = loaded.charts
        charts = {"pools": pool_usage_chart(c.usage, c.year), "programs": program_months_chart(c.months),
                  "calls": call_budget_chart(c.calls)}
    return _html(page.render_dashboard(
        pools=[page.pool_row(p) for p in loaded.pools], decisions=[page.decision_row(r) for r in loaded.decisions],
        revocations=[page.revocation_row(r) for r in loaded.revocations], filters=_shown_filters(request),
        programs=loaded.programs, years=loaded.years, csrf=csrf_token(SIGN_IN.key(request), session),
        cursor=str(loaded.cursor), notice=q.get("notice"), notice_app=(q.get("app") or "")[:100] or None,
        holds=[page.hold_row(h) for h in loaded.holds], who=who_label(can.principal), can_revoke=can.revokes,
        can_review=can.reviews, sees_activity=can.sees_activity, nav=staff_nav(ctx.settings, "ledger"),
        charts=charts, chart_year=loaded.charts.year if loaded.charts else None,
        batches=[page.batch_row(b) for b in loaded.batches], orders=[page.order_row(o) for o in loaded.orders],
        applicants=[page.applicant_row(a) for a in loaded.applicants], search=search, next_cursors=loaded.next,
        query={k: q[k] for k in _KEPT if q.get(k)}, sees_ledger=can.sees_ledger, sees_payments=can.sees_payments,
        exports_payments=can.exports_payments,
    ))


@router.get("/dashboard/exports/{name}")
async def export(request: Request, name: str, ctx: ContextDep) -> Response:
    """The exports of /v1/exports for a signed-in staff member (the dashboard's links): the same
    files, the same roles, the page's filters."""
    signed = await _signed_in(request)
    if signed is None:
        return _html(page.render_login("Sign in to download an export."), status_code=401)
    _, can = signed
    export, _, fmt = name.partition(".")
    if export not in EXPORTS or fmt not in FORMATS:
        return _html(page.render_message("No such export", "Exports: awards, payments, balances; .xlsx or .csv."),
                     status_code=404)
    if can.principal.roles.isdisjoint(EXPORT_ROLES[export]):  # type: ignore[index]
        return _html(page.render_message("Not exported", f"The {export} export needs one of the roles "
                                                         f"{', '.join(EXPORT_ROLES[export])}."),  # type: ignore[index]
                     status_code=403)
    query = ExportQuery(filters_of(request.query_params),
                        full_accounts="payment_officer" in can.principal.roles)
    return await export_response(ctx, export, fmt, query)  # type: ignore[arg-type]


@router.get("/dashboard/app.js")
async def app_js() -> Response:
    return Response(page.APP_JS, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------------------------------------
# Revoking
# ---------------------------------------------------------------------------------------------


async def _action_form(request: Request, application_id: str, what: str,
                       role: Literal["operator", "reviewer"]) -> tuple[Abilities, dict[str, str]] | Response:
    """The form of a signed-in principal holding `role`, sent from this dashboard (CSRF), with a
    reason; or the answer refusing it (`what`: what was not done)."""
    checked = await SIGN_IN.posted_form(request, role, f"Not {what}")
    if isinstance(checked, Response):
        return checked
    principal, form = checked
    if not reason_accepted(form.get("reason", "")):
        return _back("reason-required", application_id)
    return Abilities(principal), form


@router.post("/dashboard/awards/{application_id}/revoke")
async def revoke(request: Request, application_id: str, ctx: ContextDep) -> Response:
    checked = await _action_form(request, application_id, "revoked", "operator")
    if isinstance(checked, Response):
        return checked
    can, form = checked
    reason = form["reason"]
    async with ctx.unit_of_work() as db:
        notice = await revoke_from_dashboard(SqlLedgerRepository(db), application_id, reason=reason,
                                             now=datetime.now(UTC), revoked_by=can.revoked_by)
    return _back(notice, application_id)


@router.post("/dashboard/awards/{application_id}/review")
async def review(request: Request, application_id: str, ctx: ContextDep) -> Response:
    """A reviewer's 核定 from the queue: approve the amount in the form (the whole hold when left
    blank) or reject, with a reason; recorded with the reviewer's id and name."""
    checked = await _action_form(request, application_id, "reviewed", "reviewer")
    if isinstance(checked, Response):
        return checked
    can, form = checked
    verdict = APPROVE if form.get("decision") == APPROVE else REJECT if form.get("decision") == REJECT else None
    if verdict is None:
        return _html(page.render_message("Not reviewed", "Approve or reject: nothing else."), status_code=400)
    reason = form["reason"]
    amount = form.get("amount", "").strip() if verdict == APPROVE else ""
    try:
        amount_fen = parse_amount(amount) if amount else None
    except AmountError:
        return _back("amount-invalid", application_id)
    async with ctx.unit_of_work() as db:
        notice = await review_from_dashboard(SqlReviewRepository(db), application_id, verdict=verdict,
                                             amount_fen=amount_fen, reason=reason,
                                             reviewed_by=can.principal.actor, now=datetime.now(UTC))
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
    signed = await _signed_in(request)
    if signed is None:
        return Response("sign in first", status_code=401, media_type="text/plain")
    session, can = signed
    filters = filters_of(request.query_params)
    cursor = LiveCursor.parse(request.headers.get("last-event-id")) or LiveCursor.parse(
        request.query_params.get("cursor"))
    if cursor is None:
        async with ctx.snapshot() as db:
            cursor = await DashboardRepository(db).newest()

    async def changes(since: LiveCursor) -> tuple[list[bytes], LiveCursor]:
        async with ctx.snapshot() as db:
            found = await load_changes(DashboardRepository(db), filters, since, activity=can.sees_activity)
        if found is None:
            return [], since
        out = [_sse("decision", page.decision_row(r)) for r in found.decisions]
        out += [_sse("revocation", page.revocation_row(r)) for r in found.revocations]
        out += [_sse("pool", page.pool_row(p)) for p in found.pools]
        if not out:  # nothing this principal sees moved: only the cursor does
            return [], found.cursor
        # The last message carries the new cursor: a reconnecting browser resumes after it.
        out[-1] = out[-1].replace(b"event: ", f"id: {found.cursor}\nevent: ".encode(), 1)
        return out, found.cursor

    async def stream() -> AsyncIterator[bytes]:
        since = cursor
        yield b"retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_MAX_SECONDS
        quiet, polls = 0.0, 0
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            if session.expires <= time.time():
                yield _sse("bye", {"reason": "session expired"})
                return
            polls += 1
            if polls % RECHECK_POLLS == 0 and await _signed_in(request) is None:
                yield _sse("bye", {"reason": "signed out"})
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
