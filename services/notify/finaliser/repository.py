"""Every SQL statement of the finaliser: making due announcements final (and, through notify's
repository, the deliveries and outbox events that go with them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import text

from services.notify.domain import Delivery
from services.notify.finaliser.domain import Finalized
from services.notify.repository import SqlNotifyRepository
from services.notify.transparency.domain import Change
from shared.contracts.envelope import Event


class FinaliserRepository(Protocol):
    """What the finaliser reads and writes (tests pass an in-memory fake)."""

    async def finalize_due(self, limit: int, *, announcement_id: str | None = None) -> list[Finalized]:
        """Make up to `limit` announcements final whose notice has ended (domain.finalisable),
        each at most once however many finalisers run; only `announcement_id` when given."""
        ...

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...

    async def add_events(self, events: Sequence[tuple[Event, str]]) -> None: ...

    async def log_changes(self, changes: Sequence[Change]) -> None: ...


# domain.finalisable, set-based and by the database's clock. SKIP LOCKED lets several instances
# share the work; the WHERE re-check (on the row as locked: an objection filed meanwhile raised its
# count) makes each announcement final at most once and never over an objection.
_FINALIZE_DUE = text(
    "WITH due AS ("
    "  SELECT application_id FROM announcements"
    "  WHERE finalized_at IS NULL AND withdrawn_at IS NULL AND notice_ends_at <= now()"
    "  AND objections_open = 0 AND objections_upheld = 0"
    "  AND (CAST(:only AS text) IS NULL OR id = :only)"
    "  ORDER BY notice_ends_at LIMIT :n FOR UPDATE SKIP LOCKED) "
    "UPDATE announcements a SET finalized_at = now(), finalized_event_id = gen_random_uuid() "
    "FROM due WHERE a.application_id = due.application_id "
    "AND a.finalized_at IS NULL AND a.withdrawn_at IS NULL AND a.objections_open = 0 AND a.objections_upheld = 0 "
    "RETURNING a.application_id, a.partner_id, a.applicant_id, a.program, a.year, a.subject, "
    "a.amount_fen, a.notice_ends_at, a.finalized_at, a.finalized_event_id, a.decided_event_id, a.correlation_id"
)


class SqlFinaliserRepository(SqlNotifyRepository):
    async def finalize_due(self, limit: int, *, announcement_id: str | None = None) -> list[Finalized]:
        rows = (await self.session.execute(_FINALIZE_DUE, {"n": limit, "only": announcement_id})).all()
        return [Finalized(**row._mapping) for row in rows]
