"""This service's directory of who may call it, kept from the events on grantline.partners:
partners (`partner.registered`) and staff (`staff.registered`, `staff.deactivated`).

Intake owns both and writes its own staff rows with the same functions, in the transaction that
publishes the event; every other service applies the events (`partner_directory_subscription`).

Staff rows are order-safe: a deactivation that arrives before its registration (a re-drive, a
replay) leaves a deactivated placeholder which the registration fills in, and a registration
never makes a deactivated member active again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.envelope import Event
from shared.contracts.events import PartnerRegistered, StaffDeactivated, StaffRegistered, parse_data
from shared.contracts.topics import PARTNERS
from shared.messaging.consumer import Subscription, per_event
from shared.messaging.records import PartnerRecord

DIRECTORY_TYPES = frozenset({"partner.registered", "staff.registered", "staff.deactivated"})


async def apply_partner_registered(session: AsyncSession, event: Event) -> None:
    """Keep this service's replica of the partner directory (ids, names, key hashes)."""
    data = parse_data(event, PartnerRegistered)
    stmt = pg_insert(PartnerRecord).values(
        id=data.partner_id, name=data.name, callback_url=data.callback_url, api_key_hash=data.api_key_hash
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


# A registration fills in a placeholder row but leaves `active` and `deactivated_at` as they are:
# whatever order the two events come in, a deactivated member stays deactivated.
_REGISTER_STAFF = text(
    "INSERT INTO staff (id, name, roles, api_key_hash, registered_at) "
    "VALUES (:id, :name, CAST(:roles AS text[]), :hash, :at) "
    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, roles = EXCLUDED.roles, "
    "api_key_hash = EXCLUDED.api_key_hash, registered_at = EXCLUDED.registered_at"
)
# A deactivation of a member not registered here yet leaves a placeholder (no name, no roles, a
# key hash no key has); a second deactivation keeps the first one's time.
_DEACTIVATE_STAFF = text(
    "INSERT INTO staff (id, name, roles, api_key_hash, active, registered_at, deactivated_at) "
    "VALUES (:id, '', '{}', :placeholder, false, :at, :at) "
    "ON CONFLICT (id) DO UPDATE SET active = false, "
    "deactivated_at = coalesce(staff.deactivated_at, EXCLUDED.deactivated_at)"
)


def _placeholder_hash(staff_id: str) -> str:
    # 64 characters like a key's hash, but not hex: no key hashes to it, and one per member.
    return "!" + hashlib.sha256(staff_id.encode()).hexdigest()[:63]


async def apply_staff_registered(session: AsyncSession, event: Event) -> None:
    data = parse_data(event, StaffRegistered)
    await session.execute(_REGISTER_STAFF, {
        "id": data.staff_id, "name": data.name, "roles": data.roles, "hash": data.api_key_hash,
        "at": datetime.fromisoformat(data.registered_at),
    })


async def apply_staff_deactivated(session: AsyncSession, event: Event) -> None:
    data = parse_data(event, StaffDeactivated)
    await session.execute(_DEACTIVATE_STAFF, {
        "id": data.staff_id, "placeholder": _placeholder_hash(data.staff_id),
        "at": datetime.fromisoformat(data.deactivated_at),
    })


_APPLY = {
    "partner.registered": apply_partner_registered,
    "staff.registered": apply_staff_registered,
    "staff.deactivated": apply_staff_deactivated,
}


async def apply_directory_event(session: AsyncSession, event: Event) -> None:
    """Apply one grantline.partners event to this service's directory (idempotent: applying it
    twice changes nothing more); ValueError for another type or malformed data."""
    apply = _APPLY.get(event.type)
    if apply is None:
        raise ValueError(f"{event.type}: not a directory event")
    await apply(session, event)


def partner_directory_subscription(max_attempts: int = 3) -> Subscription:
    """The directory's consumer: partners and staff (named `partners`, as it was when it kept
    only partners, so its consumer group and inbox stay the same)."""
    return Subscription(
        name="partners",
        topics=[PARTNERS],
        handle=per_event(apply_directory_event, max_attempts),
        only_types=DIRECTORY_TYPES,
    )


@dataclass(frozen=True)
class Credential:
    """Whose key a key hash is: an active staff member's (with name and roles) or a partner's."""

    kind: str  # "staff" or "partner"
    id: str
    name: str
    roles: tuple[str, ...]
    api_key_hash: str


# An active staff member first, then a partner, in one round trip.
_FIND_CREDENTIAL = text(
    "SELECT 'staff' AS kind, id, name, roles, api_key_hash FROM staff WHERE api_key_hash = :h AND active "
    "UNION ALL "
    "SELECT 'partner', id, name, ARRAY[]::text[], api_key_hash FROM partners WHERE api_key_hash = :h "
    "ORDER BY kind DESC LIMIT 1"
)


async def find_credential(session: AsyncSession, key_hash: str) -> Credential | None:
    """The active staff member or partner holding the key whose hash is `key_hash`, from this
    service's directory; None for an unknown key or a deactivated member's."""
    return _credential((await session.execute(_FIND_CREDENTIAL, {"h": key_hash})).first())


_FIND_STAFF = text("SELECT 'staff' AS kind, id, name, roles, api_key_hash FROM staff WHERE id = :id AND active")


async def find_staff(session: AsyncSession, staff_id: str) -> Credential | None:
    """The active staff member `staff_id` of this service's directory; None for an unknown or
    deactivated one (a page's session names the member, and is worth nothing once they are gone)."""
    return _credential((await session.execute(_FIND_STAFF, {"id": staff_id})).first())


def _credential(row: Any) -> Credential | None:
    if row is None:
        return None
    return Credential(str(row.kind), str(row.id), str(row.name), tuple(row.roles or ()), str(row.api_key_hash))
