"""Group commit for accepted applications: the requests that arrive while one transaction is
being written share the next one.

A request prepares its rows in memory (`Submission`), then waits on `GroupCommit.submit`. One
drain task at a time takes everything pending and writes it with ONE statement in ONE
transaction (idempotency claims, applications, timeline starts, outbox events), then answers
each waiter. Under load a transaction carries dozens of applications, so the per-request cost
of a commit (and of SQLAlchemy's per-statement overhead) all but disappears; when idle a
request is written alone, at once. No request is answered before its rows have committed.

The idempotency claim decides: a key already taken (earlier, or by an earlier request of the
same batch) inserts nothing for that request and it learns it was not claimed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.transient import is_transient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """One application's rows, ready to write (every JSON value already serialised)."""

    partner_id: str
    idempotency_key: str
    fingerprint: str
    response: str  # the stored 202 reply, JSON
    app_id: str
    program: str
    year: int
    applicant_id: str
    subject: str
    input: str  # the application as received, JSON
    event_id: str
    event_type: str
    source: str
    time: datetime
    topic: str
    envelope: str  # JSON

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


_COLUMNS = {  # field → array type in the statement
    "partner_id": "text",
    "idempotency_key": "text",
    "fingerprint": "text",
    "response": "text",
    "app_id": "text",
    "program": "text",
    "year": "int",
    "applicant_id": "text",
    "subject": "text",
    "input": "text",
    "event_id": "uuid",
    "event_type": "text",
    "source": "text",
    "time": "timestamptz",
    "topic": "text",
    "envelope": "text",
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
    " INSERT INTO applications (id, partner_id, program, year, applicant_id, subject, status, input)"
    " SELECT app_id, partner_id, program, year, applicant_id, subject, 'received', CAST(input AS jsonb)"
    " FROM chosen ORDER BY n),"
    " tl AS ("
    " INSERT INTO timeline (event_id, application_id, type, source, time)"
    " SELECT event_id, app_id, event_type, source, time FROM chosen ORDER BY n),"
    " ob AS ("
    " INSERT INTO outbox (id, topic, key, type, subject, envelope)"
    " SELECT event_id, topic, applicant_id, event_type, app_id, CAST(envelope AS jsonb) FROM chosen ORDER BY n)"
    " SELECT app_id FROM claim"
)


async def write_submissions(session: AsyncSession, batch: Sequence[Submission]) -> set[str]:
    """Write the batch in the session's transaction; the application ids whose key was claimed."""
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for submission in batch:
        for name, value in submission.params().items():
            columns[name].append(value)
    return set((await session.scalars(_WRITE_MANY, columns)).all())


@dataclass
class _Waiting:
    submission: Submission
    answer: asyncio.Future[bool]


class GroupCommit:
    """Batches concurrent submissions into shared transactions (module docstring)."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        on_commit: Callable[[], None] = lambda: None,
        batch_max: int = 500,
    ) -> None:
        self._maker = maker
        self._on_commit = on_commit
        self._batch_max = batch_max
        self._pending: list[_Waiting] = []
        self._drain_task: asyncio.Task[None] | None = None
        self.transactions = 0
        self.written = 0

    async def submit(self, submission: Submission) -> bool:
        """True when this request's key was claimed and its application stored (committed)."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiting(submission, answer))
        if self._drain_task is None or self._drain_task.done():
            # A task of its own, not the first caller's: a caller that goes away must not
            # strand the others' answers.
            self._drain_task = asyncio.create_task(self._drain(), name="intake-group-commit")
        return await answer

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._batch_max], self._pending[self._batch_max :]
            try:
                await self._write(batch)
            except BaseException as exc:
                for waiting in batch:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for waiting in self._pending:
                        waiting.answer.cancel()
                    self._pending = []
                    raise

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            async with self._maker() as session, session.begin():
                claimed = await write_submissions(session, [w.submission for w in batch])
        except Exception as exc:
            if is_transient(exc) or len(batch) == 1:
                raise
            # Something in one request's rows broke the statement: alone, each fails or not on its own.
            log.warning("group commit failed; writing %d submissions one by one", len(batch), exc_info=True)
            for waiting in batch:
                try:
                    await self._write([waiting])
                except Exception as single:
                    waiting.answer.set_exception(single)
            return
        self.transactions += 1
        self.written += len(claimed)
        self._on_commit()
        for waiting in batch:
            waiting.answer.set_result(waiting.submission.app_id in claimed)
