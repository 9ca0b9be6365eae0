"""The policy replica's SQL: catalog versions and calls as grantline.policy carries them, the
notification that they changed, and reading them back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.models import Call, CatalogVersion
from services.intake.policy.domain import KnownCall
from shared.db.repository import Repository
from shared.policy.calls import CallTerms

CHANNEL = "grantline_intake_policy"  # NOTIFY channel: the replica changed
_VERSIONS = CatalogVersion.__table__  # type: ignore[attr-defined]
_CALLS = Call.__table__  # type: ignore[attr-defined]


class PolicyRepository(Repository):
    # -- applying grantline.policy (each statement a no-op when applied before) -------------------

    async def add_catalog_version(self, version: str, document: dict[str, Any], published_at: datetime) -> None:
        stmt = pg_insert(_VERSIONS).values(version=version, document=document, published_at=published_at)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))

    async def add_call(self, terms: CallTerms, title: str) -> None:
        stmt = pg_insert(_CALLS).values(
            id=terms.id, program=terms.program, year=terms.year, title=title, opens_at=terms.opens_at,
            closes_at=terms.closes_at, event_from=terms.event_from, event_to=terms.event_to,
            catalog_version=terms.catalog_version, budget_fen=terms.budget_fen,
        )
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    async def close_call(self, call_id: str, closes_at: datetime, closed_at: datetime, reason: str) -> bool:
        """The call ends at `closes_at` if that is earlier than it was to; False for an unknown call."""
        stmt = (
            update(_CALLS)
            .where(_CALLS.c.id == call_id)
            .values(
                closes_at=func.least(_CALLS.c.closes_at, closes_at),
                closed_at=func.coalesce(_CALLS.c.closed_at, closed_at),
                close_reason=func.coalesce(_CALLS.c.close_reason, reason),
            )
            .returning(_CALLS.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def announce_change(self) -> None:
        """Every intake instance listening hears it when (and only if) this transaction commits."""
        await self.session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    # -- reading the replica back ----------------------------------------------------------------

    async def catalog_versions(self) -> list[str]:
        """Every replicated version, the latest (by publication) last."""
        stmt = select(_VERSIONS.c.version).order_by(_VERSIONS.c.published_at, _VERSIONS.c.version)
        return list((await self.session.scalars(stmt)).all())

    async def catalog_documents(self, versions: Sequence[str]) -> dict[str, dict[str, Any]]:
        stmt = select(_VERSIONS.c.version, _VERSIONS.c.document).where(_VERSIONS.c.version.in_(versions))
        return {row.version: row.document for row in (await self.session.execute(stmt)).all()}

    async def calls(self) -> list[KnownCall]:
        rows = (await self.session.execute(select(_CALLS))).mappings().all()
        return [KnownCall(CallTerms.from_row(dict(row)), row["title"]) for row in rows]


@asynccontextmanager
async def listening(engine: AsyncEngine, on_change: Callable[[], None]) -> AsyncIterator[Callable[[], bool]]:
    """LISTEN for replica changes on a connection of its own for as long as the block runs;
    yields a check that the connection is still up. Losing it calls `on_change` too, so that the
    caller wakes, sees it gone and listens again (what changed meanwhile, it reloads then)."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None

        def notified(*_: object) -> None:
            on_change()

        raw.add_termination_listener(notified)
        await raw.add_listener(CHANNEL, notified)
        try:
            yield lambda: not raw.is_closed()
        finally:
            raw.remove_termination_listener(notified)
            if not raw.is_closed():
                await raw.remove_listener(CHANNEL, notified)
