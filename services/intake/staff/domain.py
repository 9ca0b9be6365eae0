"""Staff accounts, pure: roles as stored, the list's cursor, an account as shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.web.auth import STAFF_ROLES

CURSOR_TAG = "f"  # the staff list


def unknown_roles(roles: Iterable[str]) -> list[str]:
    return [role for role in roles if role not in STAFF_ROLES]


def stored_roles(roles: Iterable[str]) -> list[str]:
    """Each role once, in the contract's order (admin, operator, reviewer, payment_officer, auditor)."""
    given = set(roles)
    return [role for role in STAFF_ROLES if role in given]


@dataclass(frozen=True)
class StaffMember:
    """An account as intake keeps it, with who registered it and, once deactivated, who did it
    and why (both from its events)."""

    id: str
    name: str
    roles: list[str]
    active: bool
    registered_at: datetime
    deactivated_at: datetime | None
    registered: Mapping[str, Any] | None  # the staff.registered data
    deactivated: Mapping[str, Any] | None  # the staff.deactivated data


def staff_view(member: StaffMember) -> dict[str, Any]:
    """An account as GET /v1/staff shows it: never its key nor the key's hash."""
    deactivation = None
    if member.deactivated is not None:
        deactivation = {
            "by": member.deactivated.get("deactivated_by"),
            "reason": member.deactivated.get("reason"),
            "at": member.deactivated_at.isoformat() if member.deactivated_at else None,
        }
    return {
        "id": member.id,
        "name": member.name,
        "roles": member.roles,
        "active": member.active,
        "registered_at": member.registered_at.isoformat(),
        "registered_by": member.registered.get("registered_by") if member.registered else None,
        "deactivation": deactivation,
    }


def cursor_key(member: StaffMember) -> str:
    return f"{member.registered_at.isoformat()}|{member.id}"


def parse_cursor_key(key: str) -> tuple[datetime, str]:
    """(registered_at, id) of the last account of the previous page; ValueError for anything
    `cursor_key` did not write."""
    at, sep, staff_id = key.partition("|")
    if not sep or not staff_id:
        raise ValueError("not a cursor returned by this API")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError("not a cursor returned by this API")
    return moment, staff_id
