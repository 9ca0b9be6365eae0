"""What intake does with grantline.policy: each event applied to the replica tables (and
announced), and the in-memory view reloaded from them whenever they change."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.intake.policy.domain import PolicyView
from services.intake.policy.repository import PolicyRepository, listening
from shared.contracts.envelope import Event
from shared.contracts.events import CallClosed, CallOpened, CatalogPublished, parse_data
from shared.contracts.topics import POLICY
from shared.kernel.retry import Backoff
from shared.messaging.consumer import Subscription, per_event
from shared.policy.calls import CallTerms
from shared.policy.catalog import Catalog, catalog_from_document, load_catalog
from shared.policy.catalog_document import CatalogError

log = logging.getLogger(__name__)

POLICY_TYPES = frozenset(m.event_type for m in (CatalogPublished, CallOpened, CallClosed))
# A reload now and then even without a notification: one missed while the listening
# connection was being replaced is picked up here.
RELOAD_EVERY_SECONDS = 15.0


async def apply_policy_event(session: AsyncSession, event: Event) -> None:
    """Apply one grantline.policy event to the replica; a repeat changes nothing. A close for a
    call the replica does not have is an error (dead-lettered): call.opened and call.closed share
    a key (the program), so the opening always comes first."""
    repo = PolicyRepository(session)
    if event.type == CatalogPublished.event_type:
        published = parse_data(event, CatalogPublished)
        await repo.add_catalog_version(
            published.version, published.document, datetime.fromisoformat(published.published_at)
        )
    elif event.type == CallOpened.event_type:
        opened = parse_data(event, CallOpened)
        await repo.add_call(CallTerms.from_event(opened), opened.title)
    elif event.type == CallClosed.event_type:
        closed = parse_data(event, CallClosed)
        if not await repo.close_call(closed.id, datetime.fromisoformat(closed.closes_at), event.time, closed.reason):
            raise ValueError(f"call.closed for {closed.id}, a call this replica does not have")
    else:
        raise ValueError(f"{event.type}: not a policy event")
    await repo.announce_change()


def policy_subscription(max_attempts: int = 3) -> Subscription:
    return Subscription(
        name="policy",
        topics=[POLICY],
        handle=per_event(apply_policy_event, max_attempts),
        only_types=POLICY_TYPES,
    )


class PolicyReplica:
    """The replica's in-memory view for the hot paths (the package docstring): `view` is None
    until the first load, then always a whole, consistent PolicyView."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
        self._maker = maker
        self._engine = engine
        self._changed = asyncio.Event()
        self._stopping = False
        self.view: PolicyView | None = None

    async def reload(self) -> PolicyView:
        """Read the replica and swap the view in one assignment (requests never see half of it).
        Versions already compiled are not read again: a version never changes."""
        known = self.view.catalogs if self.view is not None else {}
        async with self._maker() as session, session.begin():
            repo = PolicyRepository(session)
            versions = await repo.catalog_versions()
            documents = await repo.catalog_documents([v for v in versions if v not in known])
            calls = await repo.calls()
        catalogs: dict[str, Catalog] = {v: known[v] for v in versions if v in known}
        for version, document in documents.items():
            try:
                catalogs[version] = catalog_from_document(document)
            except CatalogError:
                # Eligibility validated it before publishing: only a code older than the document's
                # schema gets here. Its calls answer 503 until this intake is upgraded.
                log.error("catalog version %s does not compile here", version, exc_info=True)
        latest = next((catalogs[v] for v in reversed(versions) if v in catalogs), load_catalog())
        view = PolicyView.build(latest, catalogs, calls)
        self.view = view
        return view

    def changed(self) -> None:
        self._changed.set()

    def stop(self) -> None:
        self._stopping = True
        self._changed.set()

    async def run(self) -> None:
        """Listen for changes and reload on each (and every RELOAD_EVERY_SECONDS); reconnect
        with a backoff when the database goes away."""
        backoff = Backoff(first_seconds=0.2, max_seconds=5.0)
        while not self._stopping:
            try:
                async with listening(self._engine, self.changed) as alive:
                    await self.reload()  # after LISTEN: a change committed from now on is heard
                    backoff.reset()
                    while not self._stopping and alive():
                        try:
                            await asyncio.wait_for(self._changed.wait(), timeout=RELOAD_EVERY_SECONDS)
                        except TimeoutError:
                            pass
                        self._changed.clear()
                        if not self._stopping:
                            await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("policy replica: reload failed; retrying", exc_info=True)
                await backoff.sleep()
