"""What the objections page does: list them as the API does, and resolve one through the API's
handler, answering with the notice the page shows afterwards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.notify.dashboard.domain import PAGE_SIZE, notice_of
from services.notify.objections import handlers as objections
from services.notify.objections.domain import Outcome
from services.notify.objections.repository import SqlObjectionsRepository
from shared.kernel.errors import Conflict, NotFound, ValidationFailed


async def load_objections(repo: SqlObjectionsRepository, *, status: str, cursor: str | None,
                          sees_objector: bool) -> tuple[list[dict[str, Any]], str | None]:
    """A page of objections, oldest first, as `GET /v1/objections` lists them (the objector only
    for `sees_objector`); a cursor the page did not hand out starts from the first."""
    wanted = None if status == "all" else status

    async def page(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return await objections.list_objections(repo, status=wanted, cursor=after, limit=PAGE_SIZE,
                                                sees_objector=sees_objector)

    try:
        return await page(cursor)
    except ValidationFailed:  # a cursor this page did not hand out
        return await page(None)


async def resolve_from_page(repo: SqlObjectionsRepository, objection_id: str, *, outcome: Outcome, reason: str,
                            by: dict[str, str], now: datetime) -> str:
    """Resolve as `POST /v1/objections/{id}/resolve` does; the notice the page shows afterwards."""
    try:
        resolved = await objections.resolve_objection(repo, objection_id, outcome=outcome, reason=reason, by=by,
                                                      now=now)
    except NotFound:
        return "not-found"
    except Conflict:
        return "resolved-already"
    return notice_of(resolved)
