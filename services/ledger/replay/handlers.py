"""What the replay does: apply the live order of operations to a scratch schema through the live
code path (the ledger's handlers), then compare; and the whole run, from reading to reporting."""

from __future__ import annotations

import gc
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.handlers import decide_awards, revoke_award
from services.ledger.replay.domain import (
    BATCH,
    ApplyResult,
    Decide,
    Op,
    ReplayError,
    ReplayReport,
    Review,
    Revoke,
    compare_states,
    usable_scratch_schema,
)
from services.ledger.replay.repository import (
    drop_scratch,
    prepare_scratch,
    read_from_broker,
    read_from_outbox,
    read_live,
    read_state,
    without_waiting_for_the_wal,
)
from services.ledger.repository import SqlLedgerRepository
from services.ledger.reviews.handlers import review_award
from services.ledger.reviews.repository import SqlReviewRepository
from shared.contracts.envelope import Event, PoisonEvent, parse_event
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker

Progress = Callable[[int, int, float], None]


# ---------------------------------------------------------------------------------------------
# Applying the history to the scratch schema
# ---------------------------------------------------------------------------------------------


async def apply_history(
    maker: async_sessionmaker[AsyncSession],
    ops: Sequence[Op],
    bodies: dict[str, bytes],
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    progress_every: int = 10_000,
) -> ApplyResult:
    """Feed the operations, in the live order, through the live code path into `maker`'s schema.

    The cyclic garbage collector is paused meanwhile (and run on each chunk's leftovers instead): with
    the whole history in memory, its automatic full passes otherwise cost more than the deciding.
    """
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()  # what is alive now (the history, the snapshot) is never scanned again
    gc.disable()
    try:
        return await _apply_history(maker, ops, bodies, batch=batch, progress=progress,
                                    progress_every=progress_every)
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()


async def _apply_history(
    maker: async_sessionmaker[AsyncSession],
    ops: Sequence[Op],
    bodies: dict[str, bytes],
    *,
    batch: int,
    progress: Progress | None,
    progress_every: int,
) -> ApplyResult:
    result = ApplyResult()
    started = time.perf_counter()
    next_report = progress_every
    i = 0
    while i < len(ops):
        chunk = ops[i:i + batch]
        i += len(chunk)
        async with maker() as session, session.begin():
            await without_waiting_for_the_wal(session)
            pending: list[Event] = []
            for op in chunk:
                if isinstance(op, Decide):
                    event = _parse(op.assessment_id, bodies, result)
                    if event is not None:
                        pending.append(event)
                    continue
                await _decide(session, pending, result)
                pending = []
                if isinstance(op, Revoke):
                    await _revoke(session, op, result)
                else:
                    await _review(session, op, result)
            await _decide(session, pending, result)
        result.applied += len(chunk)
        gc.collect(1)  # the chunk's cyclic garbage, if any (young objects only: cheap)
        if progress is not None and (result.applied >= next_report or i >= len(ops)):
            progress(result.applied, len(ops), time.perf_counter() - started)
            while next_report <= result.applied:
                next_report += progress_every
    result.seconds = time.perf_counter() - started
    return result


def _parse(event_id: str, bodies: dict[str, bytes], result: ApplyResult) -> Event | None:
    raw = bodies.get(event_id)
    if raw is None:
        result.missing.append(event_id)
        return None
    try:
        return parse_event(raw)
    except PoisonEvent:
        result.dead_lettered.append(event_id)
        return None


async def _decide(session: AsyncSession, events: list[Event], result: ApplyResult) -> None:
    if not events:
        return

    def dead_letter(event: Event, error: BaseException | str) -> None:
        result.dead_lettered.append(f"{event.id} ({error})")

    await decide_awards(session, events, dead_letter)
    result.assessments += len(events)


async def _revoke(session: AsyncSession, op: Revoke, result: ApplyResult) -> None:
    try:
        async with session.begin_nested():
            await revoke_award(SqlLedgerRepository(session), op.application_id, reason=op.reason,
                               revoked_by=op.revoked_by, now=op.revoked_at, event_id=op.event_id,
                               redecide=op.redecides, reason_code=op.reason_code)
        result.revocations += 1
    except Exception as exc:  # a diverged state: reported as a difference, the replay goes on
        result.failed_revocations.append(f"{op.application_id}: {type(exc).__name__}: {exc}")


async def _review(session: AsyncSession, op: Review, result: ApplyResult) -> None:
    try:
        async with session.begin_nested():
            await review_award(SqlReviewRepository(session), op.application_id,
                               verdict=op.verdict, amount_fen=op.amount_fen,
                               reason=op.reason, reviewed_by=op.reviewed_by, now=op.reviewed_at,
                               event_id=op.event_id)
        result.reviews += 1
    except Exception as exc:  # a diverged state: reported as a difference, the replay goes on
        result.failed_reviews.append(f"{op.application_id}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


def default_schema() -> str:
    return "ledger_replay_" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "_" + uuid.uuid4().hex[:4]


async def run_replay(
    database_url: str,
    *,
    source: str = "broker",
    schema: str | None = None,
    keep: bool = False,
    bootstrap: str | None = None,
    namespace: str = "",
    live_schema: str = "ledger",
    eligibility_schema: str = "eligibility",
    progress_every: int = 10_000,
    err: TextIO | None = None,
) -> ReplayReport:
    schema = schema or default_schema()
    if not usable_scratch_schema(schema, live_schema, eligibility_schema):
        raise ReplayError(f"not a usable scratch schema name: {schema!r}")
    err = err if err is not None else sys.stderr
    started = time.perf_counter()
    live_engine = make_engine(database_url, live_schema, pool_size=2)
    scratch_engine = make_engine(database_url, schema, pool_size=2)
    created = False
    try:
        live = await read_live(make_sessionmaker(live_engine))
        wanted = {op.assessment_id for op in live.ops if isinstance(op, Decide)}
        if source == "outbox":
            read = await read_from_outbox(database_url, eligibility_schema, wanted)
        elif source == "broker":
            if not bootstrap:
                raise ReplayError("no broker given (KAFKA_BOOTSTRAP_SERVERS)")
            read = await read_from_broker(bootstrap, namespace + ASSESSMENTS, wanted)
        else:
            raise ReplayError(f"unknown source {source!r}")
        read_seconds = time.perf_counter() - started
        print(f"replay: {read.total} assessments read from the {source}, {len(live.ops)} operations to apply "
              f"into {schema}", file=err, flush=True)

        await prepare_scratch(scratch_engine, database_url, schema)
        created = True

        def progress(done: int, total: int, seconds: float) -> None:
            rate = done / seconds if seconds > 0 else 0.0
            print(f"replay: {done}/{total} events ({rate:,.0f}/s)", file=err, flush=True)

        applied = await apply_history(make_sessionmaker(scratch_engine), live.ops, read.wanted,
                                      progress=progress, progress_every=progress_every)
        async with make_sessionmaker(scratch_engine)() as session:
            replayed = await read_state(session)
        differences = compare_states(live.state, replayed)
        problems = applied.problems(source)
        return ReplayReport(
            equal=not differences and not problems, schema=schema, source=source, ops=applied.applied,
            assessments=applied.assessments, revocations=applied.revocations, reviews=applied.reviews,
            history_assessments=read.total,
            not_decided_live=len(set(read.others)), differences=differences, problems=problems,
            read_seconds=read_seconds, apply_seconds=applied.seconds, total_seconds=time.perf_counter() - started,
        )
    finally:
        if created and not keep:
            await drop_scratch(live_engine, schema)
        await scratch_engine.dispose()
        await live_engine.dispose()
