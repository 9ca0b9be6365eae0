"""What the replay does: apply the live order of operations to a scratch schema through the live
code path (the ledger's handlers), then compare; and the whole run, from reading to reporting."""

from __future__ import annotations

import gc
import hashlib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.handlers import decide_awards, revoke_award
from services.ledger.payments.domain import Payer
from services.ledger.payments.handlers import (
    apply_bank_entries,
    approve_batch,
    cancel_order,
    create_batch,
    guard_revocation,
    keep_payee,
    order_payment,
    send_batch,
)
from services.ledger.payments.repository import SqlPaymentRepository
from services.ledger.replay.domain import (
    BATCH,
    ApplyResult,
    ApproveBatch,
    BankSteps,
    CreateBatch,
    Decide,
    Finalize,
    KeepPayee,
    Op,
    PayeeEvent,
    ReplayError,
    ReplayReport,
    Review,
    Revoke,
    SendBatch,
    compare_states,
    place_payees,
    usable_scratch_schema,
)
from services.ledger.replay.repository import (
    drop_scratch,
    prepare_scratch,
    read_from_broker,
    read_from_outbox,
    read_live,
    read_payees_from_broker,
    read_payees_from_outbox,
    read_state,
    without_waiting_for_the_wal,
)
from services.ledger.repository import SqlLedgerRepository
from services.ledger.reviews.handlers import review_award
from services.ledger.reviews.repository import SqlReviewRepository
from shared.contracts.envelope import Event, PoisonEvent, parse_event
from shared.contracts.topics import APPLICATIONS, ASSESSMENTS
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
                if isinstance(op, KeepPayee):  # touches no pool, award or journal: the decisions need not wait
                    await _pay(session, op, bodies, result)
                    continue
                await _decide(session, pending, result)
                pending = []
                if isinstance(op, Revoke):
                    await _revoke(session, op, result)
                elif isinstance(op, Review):
                    await _review(session, op, result)
                else:
                    await _pay(session, op, bodies, result)
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
            if op.reason_code is None:  # an operator's: as the revoke route does, payment guarded and cancelled
                payments = SqlPaymentRepository(session)
                order = await guard_revocation(payments, op.application_id)
                revocation = await revoke_award(SqlLedgerRepository(session), op.application_id, reason=op.reason,
                                                revoked_by=op.revoked_by, now=op.revoked_at, event_id=op.event_id,
                                                redecide=op.redecides)
                if revocation.created and order is not None:
                    await cancel_order(payments, order, cause=revocation.data, now=op.revoked_at)
            else:
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


PaymentOp = Finalize | KeepPayee | CreateBatch | ApproveBatch | SendBatch | BankSteps


async def _pay(session: AsyncSession, op: Op, bodies: dict[str, bytes], result: ApplyResult) -> None:
    """A payment step through the payments' own handlers, in a savepoint: one that fails, or does
    not do what the live ledger recorded it doing, is a problem and the replay goes on."""
    assert isinstance(op, Finalize | KeepPayee | CreateBatch | ApproveBatch | SendBatch | BankSteps)
    try:
        async with session.begin_nested():
            mismatch = await _apply_payment(SqlPaymentRepository(session), op, bodies)
        result.payment_steps += 1
        if mismatch is not None:
            result.failed_payments.append(mismatch)
    except Exception as exc:  # a diverged state: reported as a difference, the replay goes on
        result.failed_payments.append(f"{_named(op)}: {type(exc).__name__}: {exc}")


def _named(op: PaymentOp) -> str:
    if isinstance(op, Finalize):
        return f"finalisation of {op.event.subject} (order {op.order_id})"
    if isinstance(op, KeepPayee):
        return f"payee event {op.event_id}"
    if isinstance(op, BankSteps):
        return f"bank chunk at {op.at} ({len(op.steps)} steps, first {op.steps[0].event_id})"
    return f"{type(op).__name__} {op.batch_id}"


async def _apply_payment(repo: SqlPaymentRepository, op: PaymentOp, bodies: dict[str, bytes]) -> str | None:
    """Apply one payment step; what differs from the live record (None: nothing)."""
    if isinstance(op, KeepPayee):
        raw = bodies.get(op.event_id)
        if raw is None:
            return f"{_named(op)}: handled live, not in the source"
        await keep_payee(repo.session, parse_event(raw))
    elif isinstance(op, Finalize):
        await order_payment(repo.session, op.event, order_id=op.order_id)
        order = await repo.order_of_application(str(op.event.subject))
        if order is None or order.id != op.order_id or order.status != op.status:
            found = "no order" if order is None else f"order {order.id} {order.status}"
            return f"{_named(op)}: live ordered it {op.status}, replay made {found}"
    elif isinstance(op, CreateBatch):
        batch = await create_batch(repo, program=op.program, year=op.year, limit=op.count, by=op.by, now=op.at,
                                   batch_id=op.batch_id)
        if (batch.count, batch.control_sum_fen) != (op.count, op.control_sum_fen):
            return (f"{_named(op)}: live held {op.count} orders ({op.control_sum_fen} fen), replay "
                    f"{batch.count} ({batch.control_sum_fen} fen)")
    elif isinstance(op, ApproveBatch):
        await approve_batch(repo, op.batch_id, by=op.by, now=op.at)
    elif isinstance(op, SendBatch):
        document = await send_batch(repo, op.batch_id, payer=Payer(*op.payer), now=op.at)
        if hashlib.sha256(document).hexdigest() != op.document_sha256:
            return f"{_named(op)}: the pain.001 rebuilt is not the one sent (sha256 differs)"
    else:
        rows = await apply_bank_entries(repo, [step.entry(i) for i, step in enumerate(op.steps)], op.at,
                                        statements=op.statements, event_id=lambda entry: op.steps[entry.index].event_id)
        wrong = [f"{step.order_id} live {step.outcome} replay {outcome} ({note})"
                 for step, (_entry, outcome, _order, note) in zip(op.steps, rows, strict=True) if outcome != step.outcome]
        if wrong:
            return f"{_named(op)}: {'; '.join(wrong[:3])}"
    return None


async def read_payees(live_payees: dict[str, datetime], *, source: str, database_url: str, intake_schema: str,
                      bootstrap: str | None, namespace: str) -> tuple[dict[str, bytes], list[PayeeEvent]]:
    """The payee events the live ledger handled, from intake's history (its outbox) or the broker."""
    if source == "outbox":
        return await read_payees_from_outbox(database_url, intake_schema, live_payees)
    assert bootstrap
    return await read_payees_from_broker(bootstrap, namespace + APPLICATIONS, live_payees)


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
    intake_schema: str = "intake",
    progress_every: int = 10_000,
    err: TextIO | None = None,
) -> ReplayReport:
    schema = schema or default_schema()
    if not usable_scratch_schema(schema, live_schema, eligibility_schema, intake_schema):
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
        payee_problems: list[str] = []
        if live.pays:  # the payees, in the live order among the rest (a ledger that never paid has none to read)
            payee_bodies, payees = await read_payees(live.payees_handled, source=source, database_url=database_url,
                                                     intake_schema=intake_schema, bootstrap=bootstrap,
                                                     namespace=namespace)
            payee_problems = place_payees(live.plan, payees)
            read.wanted.update(payee_bodies)
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
        problems = [*live.plan.problems, *payee_problems, *applied.problems(source)]
        return ReplayReport(
            equal=not differences and not problems, schema=schema, source=source, ops=applied.applied,
            assessments=applied.assessments, revocations=applied.revocations, reviews=applied.reviews,
            payment_steps=applied.payment_steps,
            history_assessments=read.total,
            not_decided_live=len(set(read.others)), differences=differences, problems=problems,
            read_seconds=read_seconds, apply_seconds=applied.seconds, total_seconds=time.perf_counter() - started,
        )
    finally:
        if created and not keep:
            await drop_scratch(live_engine, schema)
        await scratch_engine.dispose()
        await live_engine.dispose()
