"""Every SQL statement of objections: holding an announcement for a new objection, storing it,
resolving it once, and listing objections for staff. Finalisation after the last dismissal goes
through the finaliser's repository (this one extends it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, text

from services.notify.domain import Position
from services.notify.finaliser.repository import SqlFinaliserRepository
from services.notify.objections.domain import Filed, Objection, Outcome, Resolution, Target

# An objection counts on its announcement's row while the notice runs (by the database's clock):
# the row lock orders it with the finaliser, which re-checks the count on the row it locks.
_HOLD = text(
    "UPDATE announcements SET objections_open = objections_open + 1 "
    "WHERE id = :id AND finalized_at IS NULL AND withdrawn_at IS NULL AND notice_ends_at > now() "
    "RETURNING id, application_id, applicant_id, partner_id, correlation_id, published_event_id"
)

_STATE = text("SELECT finalized_at IS NOT NULL AS finalized, withdrawn_at IS NOT NULL AS withdrawn "
              "FROM announcements WHERE id = :id")

_INSERT = text(
    "INSERT INTO objections (id, announcement_id, application_id, name, organisation, contact, statement, "
    "filed_at, filed_event_id) VALUES (:id, :announcement, :application, :name, :organisation, :contact, "
    ":statement, :at, :event)"
)

# Once only: a second resolution finds the objection no longer open.
_RESOLVE = text(
    "UPDATE objections SET status = :outcome, resolution_reason = :reason, resolved_by = CAST(:by AS jsonb), "
    "resolved_at = :at, resolved_event_id = :event WHERE id = :id AND status = 'open' "
    "RETURNING id, announcement_id, application_id, status, resolution_reason, resolved_by, resolved_at, "
    "resolved_event_id, filed_event_id"
)

_COUNT_RESOLUTION = text(
    "UPDATE announcements SET objections_open = objections_open - 1, "
    "objections_upheld = objections_upheld + CASE WHEN :outcome = 'upheld' THEN 1 ELSE 0 END "
    "WHERE id = :id RETURNING partner_id, applicant_id, correlation_id"
)

_EXISTS = text("SELECT 1 FROM objections WHERE id = :id")

_COLUMNS = (
    "o.id, o.announcement_id, o.application_id, a.applicant_name, a.program, a.year, a.subject, o.status, "
    "o.statement, o.name, o.organisation, o.contact, o.filed_at, o.resolution_reason, o.resolved_by, o.resolved_at"
)


class SqlObjectionsRepository(SqlFinaliserRepository):
    async def hold(self, announcement_id: str) -> Target | None:
        """Count a new objection on the announcement if its notice still runs; None otherwise."""
        row = (await self.session.execute(_HOLD, {"id": announcement_id})).one_or_none()
        if row is None:
            return None
        return Target(row.id, row.application_id, row.applicant_id, row.partner_id, row.correlation_id,
                      row.published_event_id)

    async def announcement_state(self, announcement_id: str) -> Row[Any] | None:
        """Whether the announcement is final or withdrawn; None when there is no such announcement."""
        return (await self.session.execute(_STATE, {"id": announcement_id})).one_or_none()

    async def add_objection(self, target: Target, objection: Objection, filed: Filed) -> None:
        await self.session.execute(
            _INSERT,
            {"id": filed.id, "announcement": target.announcement_id, "application": target.application_id,
             "name": objection.name, "organisation": objection.organisation, "contact": objection.contact,
             "statement": objection.statement, "at": filed.filed_at, "event": filed.event.id},
        )

    async def resolve(
        self, objection_id: str, *, outcome: Outcome, reason: str, by: dict[str, Any], at: datetime,
        event_id: uuid.UUID,
    ) -> Resolution | None:
        """Resolve an open objection; None when it is not open (resolved already, or unknown)."""
        row = (await self.session.execute(
            _RESOLVE,
            {"id": objection_id, "outcome": outcome, "reason": reason, "by": orjson.dumps(by).decode(), "at": at,
             "event": event_id},
        )).one_or_none()
        if row is None:
            return None
        return Resolution(row.id, row.announcement_id, row.application_id, row.status, row.resolution_reason,
                          row.resolved_by, row.resolved_at, row.resolved_event_id, row.filed_event_id)

    async def count_resolution(self, announcement_id: str, outcome: Outcome) -> Row[Any]:
        """The objection no longer open on its announcement (upheld ones keep holding it)."""
        return (await self.session.execute(
            _COUNT_RESOLUTION, {"id": announcement_id, "outcome": outcome}
        )).one()

    async def exists(self, objection_id: str) -> bool:
        return bool(await self.session.scalar(_EXISTS, {"id": objection_id}))

    async def list_objections(self, *, status: str | None, after: Position | None, limit: int) -> Sequence[Row[Any]]:
        """Objections oldest first (the order a reviewer works them), from just after `after`."""
        where = ["TRUE"]
        params: dict[str, Any] = {"lim": limit}
        if status is not None:
            where.append("o.status = :status")
            params["status"] = status
        if after is not None:
            where.append("(o.filed_at, o.id) > (:at, :after_id)")
            params["at"], params["after_id"] = after.at, after.id
        result = await self.session.execute(
            text(
                f"SELECT {_COLUMNS} FROM objections o JOIN announcements a ON a.id = o.announcement_id "
                f"WHERE {' AND '.join(where)} ORDER BY o.filed_at, o.id LIMIT :lim"
            ),
            params,
        )
        return result.all()
