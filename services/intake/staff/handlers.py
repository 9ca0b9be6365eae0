"""What each staff command does: register, list, deactivate."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.intake.domain import SOURCE
from services.intake.staff.domain import CURSOR_TAG, cursor_key, parse_cursor_key, staff_view, stored_roles
from services.intake.staff.repository import StaffRepository
from shared.contracts.events import Actor, StaffDeactivated, StaffRegistered, new_typed_event
from shared.kernel.cursors import next_page, page_after
from shared.kernel.errors import NotFound
from shared.web.auth import Principal, hash_secret, new_staff_key


async def register_staff(
    repo: StaffRepository, *, name: str, roles: list[str], by: Principal, now: datetime, correlation: str | None
) -> dict[str, Any]:
    """A new account and its key, which is answered here once and stored only as its hash."""
    staff_id = "stf_" + uuid.uuid4().hex[:20]
    api_key = new_staff_key()
    kept = stored_roles(roles)
    event = new_typed_event(
        StaffRegistered(
            staff_id=staff_id, name=name, roles=kept, api_key_hash=hash_secret(api_key),
            registered_by=Actor(**by.actor), registered_at=now.isoformat(),
        ),
        source=SOURCE, subject=staff_id, correlation_id=correlation, time=now,
    )
    await repo.apply(event)
    await repo.add_events([(event, staff_id)])
    return {"id": staff_id, "name": name, "roles": kept, "api_key": api_key}


async def list_staff(repo: StaffRepository, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of the accounts, newest first."""
    before = page_after(cursor or None, CURSOR_TAG, parse_cursor_key)
    members = await repo.list_members(before=before, limit=limit + 1)
    page, next_cursor = next_page(members, limit, CURSOR_TAG, cursor_key)
    return {"items": [staff_view(m) for m in page], "next_cursor": next_cursor}


async def deactivate_staff(
    repo: StaffRepository, staff_id: str, *, reason: str, by: Principal, now: datetime, correlation: str | None
) -> dict[str, Any]:
    """The account's key stops working in every service; an account deactivated already is
    answered as it stands, and nothing is published again."""
    active = await repo.lock_member(staff_id)
    if active is None:
        raise NotFound(f"no staff member {staff_id!r}")
    if active:
        event = new_typed_event(
            StaffDeactivated(
                staff_id=staff_id, deactivated_by=Actor(**by.actor), reason=reason, deactivated_at=now.isoformat()
            ),
            source=SOURCE, subject=staff_id, correlation_id=correlation, time=now,
        )
        await repo.apply(event)
        await repo.add_events([(event, staff_id)])
    member = await repo.find_member(staff_id)
    assert member is not None  # locked above
    return staff_view(member)
