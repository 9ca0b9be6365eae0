"""Every SQL statement of notify's award consumer and public notice: webhook delivery rows,
announcements, withdrawals, the outbox events that go with them, and the public listing.

Writes are set-based: one statement per table for a whole batch of plans (unnest of arrays),
so a batch costs a constant number of round trips. The dispatcher's and the finaliser's own
statements are in their sub-packages' repositories.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Row, text

from services.notify.domain import Announcement, CallTitle, Delivery, Position
from services.notify.transparency.domain import Change
from services.notify.transparency.handlers import append_changes
from services.notify.transparency.repository import SqlTransparencyRepository
from shared.contracts.envelope import Event
from shared.messaging.outbox import PublishingRepository


class NotifyRepository(Protocol):
    """What the award consumer writes (tests pass an in-memory fake)."""

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...

    async def add_announcements(self, announcements: Sequence[Announcement]) -> set[uuid.UUID]:
        """Store announcements; the decided event ids of those actually stored (the first
        notice of an application stands)."""
        ...

    async def withdraw_announcements(self, revoked_by: Mapping[str, uuid.UUID]) -> None:
        """Take the notices of these applications down, each recorded with its revocation."""
        ...

    async def add_events(self, events: Sequence[tuple[Event, str]]) -> None:
        """Outbox events, each with its Kafka key."""
        ...

    async def log_changes(self, changes: Sequence[Change]) -> None:
        """Append the announcements' changes to the transparency log, in this transaction."""
        ...


def new_delivery_id() -> str:
    return "dlv_" + uuid.uuid4().hex


_INSERT_DELIVERIES = text(
    "INSERT INTO deliveries (id, event_id, event_type, application_id, partner_id, body) "
    "SELECT i, e, t, a, p, b FROM unnest(CAST(:ids AS text[]), CAST(:events AS uuid[]), "
    "CAST(:types AS text[]), CAST(:apps AS text[]), CAST(:partners AS text[]), CAST(:bodies AS text[])) "
    "WITH ORDINALITY AS u(i, e, t, a, p, b, n) ORDER BY n "
    "ON CONFLICT (event_id, partner_id) DO NOTHING"
)

# RETURNING says which announcements were stored: a re-driven copy of a decision (or a second
# decision for the same application) conflicts, and the first notice stands.
_INSERT_ANNOUNCEMENTS = text(
    "INSERT INTO announcements (id, application_id, decided_event_id, correlation_id, partner_id, "
    "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
    "published_event_id, call_id) "
    "SELECT i, a, e, c, p, ai, an, prog, y, s, amt, pub, ends, pe, cl FROM unnest(CAST(:ids AS text[]), "
    "CAST(:apps AS text[]), CAST(:events AS uuid[]), CAST(:corrs AS text[]), CAST(:partners AS text[]), "
    "CAST(:applicants AS text[]), CAST(:names AS text[]), CAST(:programs AS text[]), CAST(:years AS int[]), "
    "CAST(:subjects AS text[]), CAST(:amounts AS bigint[]), CAST(:pubs AS timestamptz[]), "
    "CAST(:ends AS timestamptz[]), CAST(:published AS uuid[]), CAST(:calls AS text[])) "
    "WITH ORDINALITY AS u(i, a, e, c, p, ai, an, prog, y, s, amt, pub, ends, pe, cl, n) ORDER BY n "
    "ON CONFLICT DO NOTHING RETURNING decided_event_id"
)

# Withdrawn from the notice: the finaliser never touches it again. The row lock makes this wait
# for a finaliser that holds it, so the two never both win.
_WITHDRAW = text(
    "UPDATE announcements a SET withdrawn_at = now(), withdrawn_event_id = u.e "
    "FROM unnest(CAST(:apps AS text[]), CAST(:events AS uuid[])) AS u(a, e) "
    "WHERE a.application_id = u.a AND a.withdrawn_at IS NULL"
)


_INSERT_CALL = text(
    "INSERT INTO calls (id, program, year, title, opened_at) VALUES (:id, :program, :year, :title, :opened_at) "
    "ON CONFLICT (id) DO NOTHING"
)


class SqlNotifyRepository(PublishingRepository):
    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Insert webhook delivery rows, deduped by (event id, partner), in one statement."""
        if not deliveries:
            return
        await self.session.execute(
            _INSERT_DELIVERIES,
            {
                "ids": [new_delivery_id() for _ in deliveries],
                "events": [str(d.event_id) for d in deliveries],
                "types": [d.event_type for d in deliveries],
                "apps": [d.application_id for d in deliveries],
                "partners": [d.partner_id for d in deliveries],
                "bodies": [d.body for d in deliveries],
            },
        )

    async def add_announcements(self, announcements: Sequence[Announcement]) -> set[uuid.UUID]:
        if not announcements:
            return set()
        rows = await self.session.execute(
            _INSERT_ANNOUNCEMENTS,
            {
                "ids": [a.id for a in announcements],
                "apps": [a.application_id for a in announcements],
                "events": [str(a.decided_event_id) for a in announcements],
                "corrs": [a.correlation_id for a in announcements],
                "partners": [a.partner_id for a in announcements],
                "applicants": [a.applicant_id for a in announcements],
                "names": [a.applicant_name for a in announcements],
                "programs": [a.program for a in announcements],
                "years": [a.year for a in announcements],
                "subjects": [a.subject for a in announcements],
                "amounts": [a.amount_fen for a in announcements],
                "pubs": [a.published_at for a in announcements],
                "ends": [a.notice_ends_at for a in announcements],
                "published": [str(a.published.id) for a in announcements],
                "calls": [a.call_id for a in announcements],
            },
        )
        return {row[0] for row in rows}

    async def withdraw_announcements(self, revoked_by: Mapping[str, uuid.UUID]) -> None:
        if revoked_by:
            await self.session.execute(
                _WITHDRAW, {"apps": list(revoked_by), "events": [str(e) for e in revoked_by.values()]}
            )

    async def log_changes(self, changes: Sequence[Change]) -> None:
        await append_changes(SqlTransparencyRepository(self.session), changes)

    async def add_call(self, call: CallTitle) -> None:
        """A call from grantline.policy into the replica; a repeat (a re-delivery) changes nothing."""
        await self.session.execute(_INSERT_CALL, {"id": call.id, "program": call.program, "year": call.year,
                                                  "title": call.title, "opened_at": call.opened_at})

    async def list_announcements(
        self, *, year: int | None, program: str | None, status: str | None, after: Position | None, limit: int
    ) -> Sequence[Row[Any]]:
        """Announcements on the public notice (a revoked award leaves it), newest first (ties by
        application id), from just after `after`."""
        where = ["a.withdrawn_at IS NULL"]
        params: dict[str, Any] = {"lim": limit}
        if year is not None:
            where.append("a.year = :year")
            params["year"] = year
        if program:
            where.append("a.program = :program")
            params["program"] = program
        if status == "final":
            where.append("a.finalized_at IS NOT NULL")
        elif status == "under_notice":
            where.append("a.finalized_at IS NULL")
        if after is not None:
            where.append("(a.published_at < :at OR (a.published_at = :at AND a.application_id > :after_id))")
            params["at"], params["after_id"] = after.at, after.id
        result = await self.session.execute(
            text(
                "SELECT a.id, a.application_id, a.applicant_name, a.program, a.year, a.subject, a.amount_fen, "
                "a.published_at, a.notice_ends_at, a.finalized_at, a.objections_open, l.index AS log_index "
                "FROM announcements a LEFT JOIN transparency_leaves l ON l.announcement_id = a.id "
                f"AND l.kind = 'published' WHERE {' AND '.join(where)} "
                "ORDER BY a.published_at DESC, a.application_id LIMIT :lim"
            ),
            params,
        )
        return result.all()
