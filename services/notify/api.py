"""Notify's HTTP routes: the public announcements (JSON and a page) and, for operators, the
webhook deliveries with every attempt, and re-driving a parked delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain
from services.notify.page import CONTENT_SECURITY_POLICY, render_announcements
from shared.kernel.errors import Conflict, NotFound
from shared.web.auth import Principal, require
from shared.web.context import ServiceContext
from shared.web.openapi import AUTHENTICATED, NO_NUL, PUBLIC, problems

router = APIRouter()

Operator = Annotated[Principal, Depends(require("operator"))]


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


# --- 公示 (public) --------------------------------------------------------------------------

Year = Annotated[int | None, Query(ge=2000, le=2100, description="support year")]
Program = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=NO_NUL, description="program code, e.g. GT-EQUITY")
]
DeliveryId = Annotated[str, Path(max_length=100, pattern=NO_NUL)]
NoticeStatus = Annotated[Literal["under_notice", "final"] | None, Query(description="under_notice or final")]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _announcements(
    session: AsyncSession, *, year: int | None, program: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    where = ["withdrawn_at IS NULL"]  # a revoked award leaves the notice
    params: dict[str, Any] = {"lim": limit}
    if year is not None:
        where.append("year = :year")
        params["year"] = year
    if program:
        where.append("program = :program")
        params["program"] = program
    if status == "final":
        where.append("finalized_at IS NOT NULL")
    elif status == "under_notice":
        where.append("finalized_at IS NULL")
    rows = (
        await session.execute(
            text(
                "SELECT applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
                f"finalized_at FROM announcements WHERE {' AND '.join(where)} "
                "ORDER BY published_at DESC, application_id LIMIT :lim"
            ),
            params,
        )
    ).all()
    return [
        domain.public_announcement(
            applicant_name=r.applicant_name,
            program=r.program,
            year=r.year,
            subject=r.subject,
            amount_fen=r.amount_fen,
            published_at=r.published_at,
            notice_ends_at=r.notice_ends_at,
            finalized_at=r.finalized_at,
        )
        for r in rows
    ]


@router.get("/v1/announcements", tags=["announcements"], responses=problems(*PUBLIC))
async def list_announcements(
    request: Request, year: Year = None, program: Program = None, status: NoticeStatus = None, limit: Limit = 500
) -> dict[str, Any]:
    """Public, no credential: awards under public notice (公示) and final ones."""
    async with _ctx(request).maker() as session:
        items = await _announcements(session, year=year, program=program, status=status, limit=limit)
    return {"items": items}


@router.get("/announcements", response_class=HTMLResponse, tags=["announcements"], responses=problems(*PUBLIC))
async def announcements_page(
    request: Request, year: Year = None, program: Program = None, status: NoticeStatus = None, limit: Limit = 500
) -> HTMLResponse:
    async with _ctx(request).maker() as session:
        items = await _announcements(session, year=year, program=program, status=status, limit=limit)
    return HTMLResponse(
        render_announcements(items, year=year, program=program),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


# --- deliveries (operators) ---------------------------------------------------------------

DeliveryStatus = Annotated[
    Literal["pending", "delivered", "parked"] | None, Query(description="pending, delivered or parked")
]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _delivery_view(row: Any, attempts: list[dict[str, Any]], redrives: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "application_id": row.application_id,
        "partner_id": row.partner_id,
        "status": row.status,
        "attempt_count": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "delivered_at": _iso(row.delivered_at),
        "parked_at": _iso(row.parked_at),
        "redriven_by": row.redriven_by,
        "redriven_at": _iso(row.redriven_at),
        "attempts": attempts,
        "redrives": redrives,
    }


async def _load_deliveries(session: AsyncSession, where: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT * FROM deliveries WHERE {' AND '.join(where) or 'TRUE'} "
                "ORDER BY created_at DESC, id LIMIT :lim"
            ),
            params,
        )
    ).all()
    ids = [r.id for r in rows]
    attempts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    redrives: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for a in await session.execute(
            text(
                "SELECT delivery_id, attempt, url, started_at, duration_ms, outcome, status_code, error "
                "FROM delivery_attempts WHERE delivery_id = ANY(CAST(:ids AS text[])) ORDER BY delivery_id, attempt"
            ),
            {"ids": ids},
        ):
            attempts[a.delivery_id].append(
                {
                    "attempt": a.attempt,
                    "at": _iso(a.started_at),
                    "url": a.url,
                    "outcome": a.outcome,
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
            )
        for r in await session.execute(
            text(
                "SELECT delivery_id, redriven_by, redriven_at, previous_status FROM delivery_redrives "
                "WHERE delivery_id = ANY(CAST(:ids AS text[])) ORDER BY delivery_id, id"
            ),
            {"ids": ids},
        ):
            redrives[r.delivery_id].append(
                {"by": r.redriven_by, "at": _iso(r.redriven_at), "previous_status": r.previous_status}
            )
    return [_delivery_view(r, attempts[r.id], redrives[r.id]) for r in rows]


@router.get("/v1/deliveries", tags=["deliveries"], responses=problems(*AUTHENTICATED))
async def list_deliveries(
    request: Request,
    principal: Operator,
    application_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    partner_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    status: DeliveryStatus = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Webhook deliveries, newest first, each with every attempt and its outcome."""
    where: list[str] = []
    params: dict[str, Any] = {"lim": limit}
    if application_id:
        where.append("application_id = :a")
        params["a"] = application_id
    if partner_id:
        where.append("partner_id = :p")
        params["p"] = partner_id
    if status:
        where.append("status = :s")
        params["s"] = status
    async with _ctx(request).maker() as session:
        items = await _load_deliveries(session, where, params)
    return {"items": items}


@router.get("/v1/deliveries/{delivery_id}", tags=["deliveries"], responses=problems(404, *AUTHENTICATED))
async def get_delivery(
    request: Request, principal: Operator, delivery_id: DeliveryId
) -> dict[str, Any]:
    async with _ctx(request).maker() as session:
        items = await _load_deliveries(session, ["id = :id"], {"id": delivery_id, "lim": 1})
    if not items:
        raise NotFound(f"no delivery {delivery_id}")
    return items[0]


@router.post(
    "/v1/deliveries/{delivery_id}/redrive", tags=["deliveries"], responses=problems(404, 409, *AUTHENTICATED)
)
async def redrive_delivery(
    request: Request, principal: Operator, delivery_id: DeliveryId
) -> dict[str, Any]:
    """Give a parked delivery a fresh round of attempts, now; recorded with who asked."""
    ctx = _ctx(request)
    async with ctx.unit_of_work() as session:
        current = await session.scalar(
            text("SELECT status FROM deliveries WHERE id = :id FOR UPDATE"), {"id": delivery_id}
        )
        if current is None:
            raise NotFound(f"no delivery {delivery_id}")
        if current != "parked":
            raise Conflict(f"delivery {delivery_id} is {current}; only parked deliveries can be re-driven")
        await session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = now(), "
                "claim_token = NULL, parked_at = NULL, redriven_by = :who, redriven_at = now(), updated_at = now() "
                "WHERE id = :id"
            ),
            {"id": delivery_id, "who": principal.who},
        )
        await session.execute(
            text(
                "INSERT INTO delivery_redrives (delivery_id, redriven_by, previous_status) VALUES (:id, :who, :prev)"
            ),
            {"id": delivery_id, "who": principal.who, "prev": current},
        )
    async with ctx.maker() as session:
        items = await _load_deliveries(session, ["id = :id"], {"id": delivery_id, "lim": 1})
    return items[0]
