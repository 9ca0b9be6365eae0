"""The group commit's one statement: a batch of submissions written together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.submissions.domain import Submission
from shared.messaging.outbox import outbox_insert

_COLUMNS = {  # Submission field → array type in the statement
    "partner_id": "text",
    "idempotency_key": "text",
    "fingerprint": "text",
    "response": "text",
    "app_id": "text",
    "program": "text",
    "year": "int",
    "applicant_id": "text",
    "subject": "text",
    "call_id": "text",
    "input": "text",
    "event_id": "uuid",
    "event_type": "text",
    "source": "text",
    "time": "timestamptz",
    "topic": "text",
    "envelope": "text",
    "payee": "text",
}

_UNNEST = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _COLUMNS.items())

# Data-modifying CTEs all run, whatever the final SELECT reads. `chosen` is the input rows whose
# claim went in: joined on the application id, so two requests with one key in one batch
# cannot both pass (ON CONFLICT DO NOTHING keeps the first of a statement's duplicates).
_WRITE_MANY = text(
    f"WITH input AS (SELECT * FROM unnest({_UNNEST}) WITH ORDINALITY AS u({', '.join(_COLUMNS)}, n)),"
    " claim AS ("
    " INSERT INTO idempotency_keys (partner_id, key, request_hash, status_code, response)"
    # Keys in one order in every batch: concurrent writers (two intake instances) cannot deadlock
    # on each other's claims.
    " SELECT partner_id, idempotency_key, fingerprint, 202, CAST(response AS jsonb) FROM input"
    " ORDER BY partner_id, idempotency_key, n"
    " ON CONFLICT DO NOTHING RETURNING response->>'id' AS app_id),"
    " chosen AS (SELECT input.* FROM input JOIN claim USING (app_id)),"
    " app AS ("
    " INSERT INTO applications (id, partner_id, program, year, applicant_id, subject, call_id, status, input, payee)"
    " SELECT app_id, partner_id, program, year, applicant_id, subject, call_id, 'received', CAST(input AS jsonb),"
    " CAST(payee AS jsonb)"
    " FROM chosen ORDER BY n),"
    " tl AS ("
    " INSERT INTO timeline (event_id, application_id, type, source, time)"
    " SELECT event_id, app_id, event_type, source, time FROM chosen ORDER BY n),"
    # The outbox's own INSERT, fed the outbox row's columns in their order.
    f" ob AS ({outbox_insert('SELECT event_id, topic, applicant_id, event_type, app_id, envelope FROM chosen ORDER BY n')})"
    " SELECT app_id FROM claim"
)


async def write_submissions(session: AsyncSession, batch: Sequence[Submission]) -> set[str]:
    """Write the batch in the session's transaction; the application ids whose key was claimed."""
    columns: dict[str, list[Any]] = {name: [getattr(s, name) for s in batch] for name in _COLUMNS}
    return set((await session.scalars(_WRITE_MANY, columns)).all())
