"""Intake's SQL: partners, idempotent replies, the partner's reads, and the status projection's
batch writes. (The group commit's one statement is services.intake.submissions.repository.)

`viewer` is the partner whose applications a read may see; None for staff, who see every one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text

from services.intake.domain import ApplicationState, StoredApplication, TimelineItem
from shared.contracts.envelope import Event
from shared.messaging.outbox import PublishingRepository


@dataclass(frozen=True)
class StoredReply:
    """The first answer given under an idempotency key, and the request it answered."""

    request_hash: str
    status_code: int
    response: dict[str, Any]


def _visible(viewer: str | None) -> tuple[str, dict[str, Any]]:
    return ("partner_id = :viewer", {"viewer": viewer}) if viewer is not None else ("TRUE", {})


def _application(row: Any) -> StoredApplication:
    return StoredApplication(
        id=row.id, seq=row.seq, program=row.program, year=row.year, subject=row.subject, input=row.input,
        status=row.status, decision=row.decision, announcement=row.announcement,
        created_at=row.created_at, updated_at=row.updated_at, call_id=row.call_id, payee=row.payee,
        payment=row.payment,
    )


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_SELECT_APPLICATION = (
    "SELECT id, seq, program, year, subject, input, status, decision, announcement, created_at, updated_at, call_id, "
    "payee, payment FROM applications"
)
_LOCK_MANY = text(
    "SELECT id, status, status_rank, decision, announcement, objections, payment FROM applications "
    "WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id FOR UPDATE"
)
_TIMELINE_MANY = text(
    "INSERT INTO timeline (event_id, application_id, type, source, time, envelope) "
    "SELECT e, a, t, s, tm, CAST(env AS jsonb) FROM unnest(CAST(:e AS uuid[]), CAST(:a AS text[]), "
    "CAST(:t AS text[]), CAST(:s AS text[]), CAST(:tm AS timestamptz[]), CAST(:env AS text[])) "
    "WITH ORDINALITY AS u(e, a, t, s, tm, env, n) ORDER BY n ON CONFLICT DO NOTHING"
)
_PROJECT_MANY = text(
    "UPDATE applications AS a SET status = u.st, status_rank = u.rk, decision = CAST(u.d AS jsonb), "
    "announcement = CAST(u.an AS jsonb), objections = CAST(u.ob AS jsonb), payment = CAST(u.pm AS jsonb), "
    "updated_at = now() "
    "FROM unnest(CAST(:id AS text[]), CAST(:st AS text[]), CAST(:rk AS int[]), CAST(:d AS text[]), "
    "CAST(:an AS text[]), CAST(:ob AS text[]), CAST(:pm AS text[])) AS u(id, st, rk, d, an, ob, pm) WHERE a.id = u.id"
)


class IntakeRepository(PublishingRepository):
    """Every statement intake runs, in the session's transaction."""

    # -- partners and the outbox ------------------------------------------------------------------

    async def add_partner(self, partner_id: str, *, name: str, callback_url: str, api_key_hash: str) -> None:
        await self.session.execute(
            text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES (:id, :n, :u, :h)"),
            {"id": partner_id, "n": name, "u": callback_url, "h": api_key_hash},
        )

    # -- submissions ----------------------------------------------------------------------------

    async def find_reply(self, partner_id: str, key: str) -> StoredReply | None:
        row = (
            await self.session.execute(
                text(
                    "SELECT request_hash, status_code, response FROM idempotency_keys "
                    "WHERE partner_id = :p AND key = :k"
                ),
                {"p": partner_id, "k": key},
            )
        ).first()
        return StoredReply(row.request_hash, row.status_code, row.response) if row else None

    # -- the partner's reads --------------------------------------------------------------------

    async def find_application(self, app_id: str, viewer: str | None) -> StoredApplication | None:
        clause, params = _visible(viewer)
        row = (
            await self.session.execute(
                text(f"{_SELECT_APPLICATION} WHERE id = :id AND {clause}"), {"id": app_id, **params}
            )
        ).first()
        return _application(row) if row else None

    async def is_visible(self, app_id: str, viewer: str | None) -> bool:
        clause, params = _visible(viewer)
        found = await self.session.scalar(
            text(f"SELECT 1 FROM applications WHERE id = :id AND {clause}"), {"id": app_id, **params}
        )
        return found is not None

    async def timeline(self, app_id: str, *, envelopes: bool = False) -> list[TimelineItem]:
        """The application's events in timeline order; with `envelopes`, each one's full envelope:
        intake's own from its outbox, downstream ones as consumed (None when not kept)."""
        envelope = "coalesce(t.envelope, o.envelope)" if envelopes else "NULL"
        join = " LEFT JOIN outbox o ON o.id = t.event_id" if envelopes else ""
        rows = (
            await self.session.execute(
                text(
                    f"SELECT t.event_id, t.type, t.source, t.time, {envelope} AS envelope FROM timeline t{join} "
                    "WHERE t.application_id = :id ORDER BY t.time, t.recorded_seq"
                ),
                {"id": app_id},
            )
        ).all()
        return [TimelineItem(r.event_id, r.type, r.source, r.time, r.envelope) for r in rows]

    async def list_applications(
        self, viewer: str | None, *, status: str | None, program: str | None, before: int | None, limit: int
    ) -> list[StoredApplication]:
        """Newest first, at most `limit`, those older than `before` (a `seq`) when given."""
        clause, params = _visible(viewer)
        where = [clause]
        for column, value in (("status", status), ("program", program)):
            if value:
                where.append(f"{column} = :{column}")
                params[column] = value
        if before is not None:
            where.append("seq < :before")
            params["before"] = before
        rows = (
            await self.session.execute(
                text(f"{_SELECT_APPLICATION} WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :lim"),
                {**params, "lim": limit},
            )
        ).all()
        return [_application(r) for r in rows]

    # -- the status projection ------------------------------------------------------------------

    async def lock_states(self, app_ids: Sequence[str]) -> dict[str, ApplicationState]:
        """The projected state of those of `app_ids` that are intake's, locked, in id order (so two
        batches cannot deadlock)."""
        rows = (await self.session.execute(_LOCK_MANY, {"ids": sorted(app_ids)})).all()
        return {
            r.id: ApplicationState(r.status, r.status_rank, r.decision, r.announcement, r.objections, r.payment)
            for r in rows
        }

    async def add_timeline_entries(self, entries: Sequence[tuple[str, Event]]) -> None:
        """(application id, consumed event) pairs, in order; an event recorded already is skipped."""
        await self.session.execute(_TIMELINE_MANY, {
            "e": [str(e.id) for _, e in entries], "a": [a for a, _ in entries], "t": [e.type for _, e in entries],
            "s": [e.source for _, e in entries], "tm": [e.time for _, e in entries],
            "env": [e.to_json() for _, e in entries],
        })

    async def save_states(self, states: Mapping[str, ApplicationState]) -> None:
        ids = list(states)
        await self.session.execute(_PROJECT_MANY, {
            "id": ids, "st": [states[a].status for a in ids], "rk": [states[a].status_rank for a in ids],
            "d": [_json(states[a].decision) for a in ids], "an": [_json(states[a].announcement) for a in ids],
            "ob": [_json(states[a].objections) for a in ids], "pm": [_json(states[a].payment) for a in ids],
        })
