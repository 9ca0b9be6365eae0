"""What submitting an application does: its rows prepared in memory, then written with the
requests that arrive at the same time, in one transaction (the package docstring)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.domain import SOURCE
from services.intake.payees.domain import Payee
from services.intake.submissions.domain import Submission
from services.intake.submissions.repository import write_submissions
from shared.contracts.events import ApplicationBody, ApplicationReceived, new_typed_event
from shared.contracts.events import Payee as PayeeData
from shared.db.transient import is_transient
from shared.messaging.outbox import outbox_row
from shared.policy.catalog import Catalog
from shared.policy.validation import ApplicationInput

log = logging.getLogger(__name__)


def prepare_submission(
    *,
    partner_id: str,
    idempotency_key: str,
    fingerprint: str,
    application: ApplicationInput,
    catalog: Catalog,
    call_id: str,
    received_at: datetime,
    correlation: str | None,
    payee: Payee | None = None,
) -> Submission:
    """The rows of one accepted application: its idempotency claim and stored 202 reply, the
    application, its first timeline entry and its `application.received` outbox event. The event's
    time is `received_at`, the moment the call was found open (eligibility judges a call closed
    meanwhile by it); `catalog` is the version the call pinned, which validated the application.
    `payee`, when given, travels in full in the event (the ledger pays it) and is stored in full."""
    app_id = "app_" + uuid.uuid4().hex
    response = {"id": app_id, "status": "received", "links": {"self": f"/v1/applications/{app_id}"}}
    wire = application.to_wire(catalog)
    # Without a payee the key is left out (absent on the wire, never null).
    extra = {"payee": PayeeData.model_validate(payee.to_wire())} if payee is not None else {}
    received = ApplicationReceived(
        application_id=app_id,
        partner_id=partner_id,
        application=ApplicationBody.model_validate(wire),
        call_id=call_id,
        **extra,
    )
    event = new_typed_event(received, source=SOURCE, subject=app_id, correlation_id=correlation, time=received_at)
    row = outbox_row(event, application.applicant_id)
    return Submission(
        partner_id=partner_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        response=orjson.dumps(response).decode(),
        app_id=app_id,
        program=application.program,
        year=application.year,
        applicant_id=str(row["key"]),
        subject=application.subject,
        call_id=call_id,
        input=orjson.dumps(wire).decode(),
        event_id=str(row["id"]),
        event_type=str(row["type"]),
        source=event.source,
        time=event.time,
        topic=str(row["topic"]),
        envelope=str(row["envelope"]),
        payee=orjson.dumps(payee.to_wire()).decode() if payee is not None else None,
    )


@dataclass
class _Waiting:
    submission: Submission
    answer: asyncio.Future[bool]


class GroupCommit:
    """Batches concurrent submissions into shared transactions (the package docstring)."""

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
