"""What the finaliser does: every tick, in one transaction, make the announcements whose notice
has ended final, with their `award.finalized` outbox events and webhook deliveries. It runs on
every instance (row locks share the work), survives database outages (log, back off, continue)
and stops promptly on `stop()`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.domain import delivery_for
from services.notify.finaliser import domain
from services.notify.finaliser.repository import FinaliserRepository, SqlFinaliserRepository
from services.notify.transparency.domain import Change
from shared.contracts.envelope import Event
from shared.kernel.retry import Backoff

log = logging.getLogger(__name__)


async def finalize_due(
    repo: FinaliserRepository, *, limit: int = 100, announcement_id: str | None = None
) -> list[Event]:
    """Finalise announcements whose notice has ended without a revocation or an objection held
    open or upheld (only `announcement_id`, when given: the last objection to it was just
    dismissed), in the caller's transaction: the state change, the `award.finalized` outbox
    events and the webhook rows commit together."""
    finalized = await repo.finalize_due(limit, announcement_id=announcement_id)
    for f in finalized:
        # The statement chose it by the rule; its answer is checked against the rule.
        assert domain.finalisable(domain.Notice(f.notice_ends_at), f.finalized_at), f.application_id
    events = [(domain.finalized_event(f), f) for f in finalized]
    await repo.add_deliveries([delivery_for(e.id, e.type, f.application_id, f.partner_id, e.data) for e, f in events])
    await repo.add_events([(e, f.applicant_id) for e, f in events])
    # Last, in the same transaction (the log's lock is held only while nothing else waits).
    await repo.log_changes([Change("finalized", f.application_id) for f in finalized])
    return [e for e, _ in events]


class Finaliser:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        *,
        poll_s: float = 0.25,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._maker = maker
        self._poll_s = poll_s
        self._on_commit = on_commit
        self._stopping = asyncio.Event()
        self.finalized = 0

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        async with self._maker() as session, session.begin():
            events = await finalize_due(SqlFinaliserRepository(session))
        if events:
            self.finalized += len(events)
            self._on_commit()
        return len(events)

    async def run(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                count = await self.tick()
                backoff.reset()
                if count:
                    continue
                wait = self._poll_s
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("finaliser failed; will retry", exc_info=True)
                wait = backoff.next_delay()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
