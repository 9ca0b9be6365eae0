"""The staff accounts' SQL. Rows are written only through shared.messaging.directory (the one
writer of staff rows in every service); who registered or deactivated an account, and why, is
read from its events in intake's outbox (the event history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.intake.staff.domain import StaffMember
from shared.contracts.envelope import Event
from shared.messaging.directory import apply_directory_event
from shared.messaging.outbox import PublishingRepository

_SELECT = (
    "SELECT s.id, s.name, s.roles, s.active, s.registered_at, s.deactivated_at, "
    "r.envelope->'data' AS registered, d.envelope->'data' AS deactivated FROM staff s "
    "LEFT JOIN LATERAL (SELECT envelope FROM outbox WHERE subject = s.id AND type = 'staff.registered' "
    "ORDER BY seq LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT envelope FROM outbox WHERE subject = s.id AND type = 'staff.deactivated' "
    "ORDER BY seq LIMIT 1) d ON true"
)


def _member(row: Any) -> StaffMember:
    return StaffMember(
        id=row.id, name=row.name, roles=list(row.roles), active=row.active, registered_at=row.registered_at,
        deactivated_at=row.deactivated_at, registered=row.registered, deactivated=row.deactivated,
    )


class StaffRepository(PublishingRepository):
    async def apply(self, event: Event) -> None:
        """Write what a staff event says into intake's own staff table, as every replica does."""
        await apply_directory_event(self.session, event)

    async def lock_member(self, staff_id: str) -> bool | None:
        """Whether the account is active (None: there is none), locked until the transaction ends:
        of two deactivations at once, the second waits, then finds it deactivated. (Its view is
        read afresh after the lock: a row locked after a wait is re-read, the rest of a join not.)"""
        row = (
            await self.session.execute(text("SELECT active FROM staff WHERE id = :id FOR UPDATE"), {"id": staff_id})
        ).first()
        return bool(row.active) if row else None

    async def find_member(self, staff_id: str) -> StaffMember | None:
        row = (await self.session.execute(text(f"{_SELECT} WHERE s.id = :id"), {"id": staff_id})).first()
        return _member(row) if row else None

    async def list_members(self, *, before: tuple[datetime, str] | None, limit: int) -> list[StaffMember]:
        """Newest first, at most `limit`, those registered before `before` ((registered_at, id)) when given."""
        where, params = "", dict[str, Any](lim=limit)
        if before is not None:
            where = " WHERE (s.registered_at, s.id) < (:at, :id)"
            params.update(at=before[0], id=before[1])
        rows = (
            await self.session.execute(
                text(f"{_SELECT}{where} ORDER BY s.registered_at DESC, s.id DESC LIMIT :lim"), params
            )
        ).all()
        return [_member(r) for r in rows]
