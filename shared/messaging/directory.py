"""This service's replica of the partner directory, kept from `partner.registered` events."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.envelope import Event
from shared.contracts.events import PartnerRegistered, parse_data
from shared.contracts.topics import PARTNERS
from shared.messaging.consumer import Subscription, per_event
from shared.messaging.records import PartnerRecord


async def apply_partner_registered(session: AsyncSession, event: Event) -> None:
    """Keep this service's replica of the partner directory (ids, names, key hashes)."""
    data = parse_data(event, PartnerRegistered)
    stmt = pg_insert(PartnerRecord).values(
        id=data.partner_id, name=data.name, callback_url=data.callback_url, api_key_hash=data.api_key_hash
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def partner_directory_subscription(max_attempts: int = 3) -> Subscription:
    return Subscription(
        name="partners",
        topics=[PARTNERS],
        handle=per_event(apply_partner_registered, max_attempts),
        only_types=frozenset({"partner.registered"}),
    )




async def find_partner_by_key_hash(session: AsyncSession, key_hash: str) -> tuple[str, str] | None:
    """(partner id, stored key hash) for an API key's hash, from this service's directory."""
    row = (
        await session.execute(text("SELECT id, api_key_hash FROM partners WHERE api_key_hash = :h"), {"h": key_hash})
    ).first()
    return (str(row.id), str(row.api_key_hash)) if row else None
