"""What filing, resolving and listing objections do (the I/O edge over objections/domain.py).

Filing: the announcement's row counts the objection only while its notice runs (404 unknown,
409 ended, final or withdrawn), then the objection and its `objection.filed` are written in the
same transaction. Resolving: open → upheld or dismissed exactly once (409 after), with
`objection.resolved` and its webhook to the partner; the last open objection dismissed after
the notice ended makes the award final at once.

The objector's name and contact must never reach a log line: a database error while storing an
objection carries its parameters in its message, so it is re-raised without them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from services.notify.domain import Position, delivery_for
from services.notify.finaliser.handlers import finalize_due
from services.notify.objections import domain
from services.notify.objections.domain import Objection, Outcome
from services.notify.objections.repository import SqlObjectionsRepository
from shared.db.transient import is_transient
from shared.kernel.cursors import next_page, page_after
from shared.kernel.errors import Conflict, NotFound, Unavailable

T = TypeVar("T")


class ObjectionNotStored(RuntimeError):
    """A database error while storing or resolving an objection, without the statement's
    parameters (they hold the objector's name and contact)."""


async def without_parameters(step: Callable[[], Awaitable[T]]) -> T:
    """Run a database step whose parameters must not reach a log: SQLAlchemy's error message
    repeats them, and the app logs unexpected errors with their traceback."""
    try:
        return await step()
    except DBAPIError as exc:
        if is_transient(exc):
            raise Unavailable("a dependency is unavailable; retry later") from None
        raise ObjectionNotStored(f"{type(exc.orig).__name__} while writing an objection") from None


async def file_objection(
    repo: SqlObjectionsRepository, announcement_id: str, objection: Objection, *, now: datetime
) -> str:
    """File an objection; its id. NotFound for an unknown announcement, Conflict when the
    announcement takes no more objections."""
    target = await without_parameters(lambda: repo.hold(announcement_id))
    if target is None:
        state = await repo.announcement_state(announcement_id)
        if state is None:
            raise NotFound(f"no announcement {announcement_id}")
        raise Conflict(domain.why_not_open(finalized=state.finalized, withdrawn=state.withdrawn))
    filed = domain.filed(target, objection, objection_id=domain.new_objection_id(), now=now)

    async def store() -> None:
        await repo.add_objection(target, objection, filed)
        await repo.add_events([(filed.event, target.applicant_id)])

    await without_parameters(store)
    return filed.id


async def resolve_objection(
    repo: SqlObjectionsRepository, objection_id: str, *, outcome: Outcome, reason: str, by: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Resolve an open objection once: `objection.resolved` and the partner's webhook; when the
    last open one is dismissed and the notice has ended, `award.finalized` in the same
    transaction. NotFound for an unknown objection, Conflict for one resolved already."""
    resolution = await repo.resolve(objection_id, outcome=outcome, reason=reason, by=by, at=now,
                                    event_id=uuid.uuid4())
    if resolution is None:
        if await repo.exists(objection_id):
            raise Conflict(f"objection {objection_id} is resolved already")
        raise NotFound(f"no objection {objection_id}")
    announcement = await repo.count_resolution(resolution.announcement_id, outcome)
    event = domain.resolved_event(resolution, partner_id=announcement.partner_id,
                                  correlation_id=announcement.correlation_id)
    await repo.add_events([(event, announcement.applicant_id)])
    await repo.add_deliveries(
        [delivery_for(event.id, event.type, resolution.application_id, announcement.partner_id, event.data)]
    )
    finalized = []
    if outcome == "dismissed":
        finalized = await finalize_due(repo, limit=1, announcement_id=resolution.announcement_id)
    return {"id": resolution.id, "status": resolution.outcome, "announcement_id": resolution.announcement_id,
            "application_id": resolution.application_id, "reason": resolution.reason,
            "resolved_by": resolution.resolved_by, "resolved_at": resolution.resolved_at.isoformat(),
            "finalized": bool(finalized)}


async def list_objections(
    repo: SqlObjectionsRepository, *, status: str | None, cursor: str | None, limit: int, sees_objector: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of objections, oldest first, and the next page's cursor."""
    rows = await repo.list_objections(
        status=status, after=page_after(cursor, domain.OBJECTIONS_CURSOR, Position.parse), limit=limit + 1
    )
    page, next_cursor = next_page(rows, limit, domain.OBJECTIONS_CURSOR, lambda r: domain.position_of(r.filed_at, r.id))
    return [domain.staff_view(r, sees_objector=sees_objector) for r in page], next_cursor
