"""What intake does with each command and each downstream event (I/O edge over domain.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import ApplicationState, project
from services.intake.submissions import Submission
from shared.contracts.envelope import Event, new_event
from shared.kernel.cursors import decode_cursor, encode_cursor
from shared.kernel.money import AmountError, parse_amount
from shared.messaging.consumer import DeadLetter
from shared.messaging.outbox import add_events, outbox_row
from shared.policy.validation import ApplicationInput
from shared.web.auth import Principal, hash_secret, new_api_key, webhook_secret_for

SOURCE = "grantline.intake"
CURSOR_TAG = "s"  # the applications list


async def register_partner(
    session: AsyncSession, *, name: str, callback_url: str, signing_key: str, correlation: str | None
) -> dict[str, str]:
    partner_id = "ptn_" + uuid.uuid4().hex[:20]
    api_key = new_api_key()
    key_hash = hash_secret(api_key)
    await session.execute(
        text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES (:id, :n, :u, :h)"),
        {"id": partner_id, "n": name, "u": callback_url, "h": key_hash},
    )
    event = new_event(
        "partner.registered",
        source=SOURCE,
        subject=partner_id,
        correlation_id=correlation,
        data={"partner_id": partner_id, "name": name, "callback_url": callback_url, "api_key_hash": key_hash},
    )
    await add_events(session, [(event, partner_id)])
    return {
        "id": partner_id,
        "name": name,
        "callback_url": callback_url,
        "api_key": api_key,
        "webhook_secret": webhook_secret_for(partner_id, signing_key),
    }


async def find_idempotent_reply(
    session: AsyncSession, partner_id: str, key: str
) -> tuple[str, int, dict[str, Any]] | None:
    row = (
        await session.execute(
            text(
                "SELECT request_hash, status_code, response FROM idempotency_keys "
                "WHERE partner_id = :p AND key = :k"
            ),
            {"p": partner_id, "k": key},
        )
    ).first()
    return (row.request_hash, row.status_code, row.response) if row else None


def prepare_submission(
    *,
    partner_id: str,
    idempotency_key: str,
    fingerprint: str,
    application: ApplicationInput,
    correlation: str | None,
) -> Submission:
    """The rows of one accepted application: its idempotency claim and stored 202 reply, the
    application, its first timeline entry and its `application.received` outbox event."""
    app_id = "app_" + uuid.uuid4().hex
    response = {"id": app_id, "status": "received", "links": {"self": f"/v1/applications/{app_id}"}}
    wire = application.to_wire()
    event = new_event(
        "application.received",
        source=SOURCE,
        subject=app_id,
        correlation_id=correlation,
        data={"application_id": app_id, "partner_id": partner_id, "application": wire},
    )
    row = outbox_row(event, application.applicant_id)
    return Submission(
        partner_id=partner_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        response=orjson.dumps(response).decode(),
        app_id=app_id,
        program=application.program,
        year=application.year,
        applicant_id=application.applicant_id,
        subject=application.subject,
        input=orjson.dumps(wire).decode(),
        event_id=str(event.id),
        event_type=event.type,
        source=event.source,
        time=event.time,
        topic=str(row["topic"]),
        envelope=str(row["envelope"]),
    )


def _visible_clause(principal: Principal) -> tuple[str, dict[str, Any]]:
    if principal.role == "partner":
        return "partner_id = :viewer", {"viewer": principal.partner_id}
    return "TRUE", {}


def _public_view(row: Any, timeline: list[dict[str, Any]] | None) -> dict[str, Any]:
    inp = row.input
    out: dict[str, Any] = {
        "id": row.id,
        "program": row.program,
        "year": row.year,
        "applicant": inp.get("applicant"),
        "subject": row.subject,
        "requested_amount": inp.get("requested_amount"),
        "facts": inp.get("facts"),
        "status": row.status,
        "decision": row.decision,
        "announcement": row.announcement,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    if timeline is not None:
        out["timeline"] = timeline
    return out


async def get_application(session: AsyncSession, app_id: str, principal: Principal) -> dict[str, Any] | None:
    clause, params = _visible_clause(principal)
    row = (
        await session.execute(
            text(f"SELECT * FROM applications WHERE id = :id AND {clause}"), {"id": app_id, **params}
        )
    ).first()
    if row is None:
        return None
    events = (
        await session.execute(
            text(
                "SELECT event_id, type, source, time FROM timeline WHERE application_id = :id "
                "ORDER BY time, recorded_seq"
            ),
            {"id": app_id},
        )
    ).all()
    timeline = [
        {"type": e.type, "time": e.time.isoformat(), "source": e.source, "event_id": str(e.event_id)}
        for e in events
    ]
    return _public_view(row, timeline)


async def get_application_events(
    session: AsyncSession, app_id: str, principal: Principal
) -> list[dict[str, Any]] | None:
    """Every event that touched the application, across services, in timeline order, as full envelopes:
    intake's own from its outbox, downstream ones as consumed. None when not visible to the principal."""
    clause, params = _visible_clause(principal)
    visible = await session.scalar(
        text(f"SELECT 1 FROM applications WHERE id = :id AND {clause}"), {"id": app_id, **params}
    )
    if visible is None:
        return None
    rows = (
        await session.execute(
            text(
                "SELECT t.event_id, t.type, t.source, t.time, coalesce(t.envelope, o.envelope) AS envelope "
                "FROM timeline t LEFT JOIN outbox o ON o.id = t.event_id "
                "WHERE t.application_id = :id ORDER BY t.time, t.recorded_seq"
            ),
            {"id": app_id},
        )
    ).all()
    return [
        dict(r.envelope)
        if r.envelope is not None
        # recorded before envelopes were kept: what the timeline has, marked incomplete
        else {"id": str(r.event_id), "type": r.type, "source": r.source, "time": r.time.isoformat(),
              "subject": app_id, "data": None, "incomplete": True}
        for r in rows
    ]


async def list_applications(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    program: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    clause, params = _visible_clause(principal)
    where = [clause]
    if status:
        where.append("status = :status")
        params["status"] = status
    if program:
        where.append("program = :program")
        params["program"] = program
    if cursor:
        where.append("seq < :before")
        params["before"] = decode_cursor(cursor, CURSOR_TAG)
    rows = (
        await session.execute(
            text(f"SELECT * FROM applications WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :lim"),
            {**params, "lim": limit + 1},
        )
    ).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].seq, CURSOR_TAG) if len(rows) > limit else None
    return {"items": [_public_view(r, None) for r in page], "next_cursor": next_cursor}


_DECIDED_STATUSES = frozenset({"approved", "partially_approved", "rejected", "ineligible"})


def check_downstream_data(event_type: str, data: dict[str, Any]) -> None:
    """ValueError (the consumer dead-letters the event) for data the projection cannot show as is."""

    def amount(key: str) -> None:
        if key in data:
            try:
                parse_amount(data[key])
            except AmountError as exc:
                raise ValueError(f"{event_type}: data.{key}: {exc}") from exc

    def instant(key: str) -> None:
        value = data.get(key)
        if value is None:
            return
        try:
            if not isinstance(value, str):
                raise TypeError(type(value).__name__)
            datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{event_type}: data.{key}: not an RFC 3339 time") from exc

    if "application_id" in data and not isinstance(data["application_id"], str):
        raise ValueError(f"{event_type}: data.application_id: must be a string")
    if "reasons" in data and not isinstance(data["reasons"], list):
        raise ValueError(f"{event_type}: data.reasons: must be a list")
    if event_type == "application.assessed":
        if not isinstance(data.get("eligible"), bool):
            raise ValueError(f"{event_type}: data.eligible: must be true or false")
        amount("entitlement")
    elif event_type == "award.decided":
        if data.get("status") not in _DECIDED_STATUSES:
            raise ValueError(f"{event_type}: data.status: must be one of {sorted(_DECIDED_STATUSES)}")
        amount("entitlement")
        amount("awarded")
    elif event_type == "announcement.published":
        instant("published_at")
        instant("notice_ends_at")
    elif event_type == "award.finalized":
        instant("finalized_at")


_LOCK_MANY = text(
    "SELECT id, status, status_rank, decision, announcement FROM applications "
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
    "announcement = CAST(u.an AS jsonb), updated_at = now() "
    "FROM unnest(CAST(:id AS text[]), CAST(:st AS text[]), CAST(:rk AS int[]), CAST(:d AS text[]), "
    "CAST(:an AS text[])) AS u(id, st, rk, d, an) WHERE a.id = u.id"
)


async def record_downstream_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """Project assessments, awards and announcements onto applications and their timelines,
    a batch in three statements: lock the applications (in id order), add the timeline
    entries, write each projection once."""
    checked: list[tuple[str, Event]] = []
    for event in events:
        try:
            check_downstream_data(event.type, event.data)
        except ValueError as exc:
            dead_letter(event, exc)
            continue
        app_id = event.data.get("application_id") or event.subject
        if isinstance(app_id, str):
            checked.append((app_id, event))
    if not checked:
        return
    rows = (await session.execute(_LOCK_MANY, {"ids": sorted({a for a, _ in checked})})).all()
    states = {r.id: ApplicationState(r.status, r.status_rank, r.decision, r.announcement) for r in rows}
    ours = [(a, e) for a, e in checked if a in states]  # others: another deployment's, nothing to project
    if not ours:
        return
    await session.execute(_TIMELINE_MANY, {
        "e": [str(e.id) for _, e in ours], "a": [a for a, _ in ours], "t": [e.type for _, e in ours],
        "s": [e.source for _, e in ours], "tm": [e.time for _, e in ours],
        "env": [e.to_json() for _, e in ours],
    })
    for app_id, event in ours:
        states[app_id] = project(states[app_id], event.type, event.data, event.time.isoformat())
    changed = sorted({a for a, _ in ours})
    await session.execute(_PROJECT_MANY, {
        "id": changed, "st": [states[a].status for a in changed], "rk": [states[a].status_rank for a in changed],
        "d": [_json(states[a].decision) for a in changed], "an": [_json(states[a].announcement) for a in changed],
    })


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
