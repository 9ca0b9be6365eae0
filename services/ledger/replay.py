"""`grantline-replay`: rebuild the ledger from the event history and diff it against the live one.

What it does, in order:

1. Snapshot the live ledger in one REPEATABLE READ transaction: its own event history (the outbox:
   `award.decided` rows carry `causation_id` = the assessment event id, `award.revoked` rows carry the
   recorded revocation) and its state (pools, decisions, awards, journal, head, revocations). The
   outbox gives the order the live ledger applied assessments and operator revocations in.
2. Read the assessment bodies from the history: the broker's `grantline.assessments` topic from the
   beginning (`--source broker`, the default), or the eligibility service's own event history, its
   outbox (`--source outbox`), when the broker's retention has dropped them.
3. Migrate a scratch schema with the ledger's own Alembic migrations and apply the history to it with
   the live code path: the batch handler `decide_awards` (≤ BATCH assessments per transaction) and
   `revoke_award` with the recorded who, why, time and event id, interleaved in the live order.
4. Compare pools (cap, committed), decisions, awards, journal entries (hash and body), the head and
   revocations; print a summary. Exit 0 when equal, 1 with the differences (each differing pool
   named), 2 when the replay could not run.

Usage::

    grantline-replay [--source broker|outbox] [--schema NAME] [--keep] [--progress-every N]

DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and GRANTLINE_TOPIC_NAMESPACE come from shared.config.settings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.ledger.handlers import decide_awards, revoke_award
from services.ledger.repository import SqlLedgerRepository
from shared.config.settings import Settings, get_settings
from shared.contracts.envelope import Event, PoisonEvent, parse_event
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade

log = logging.getLogger(__name__)

BATCH = 10_000  # operations per transaction (decide_awards gets every run of assessments between revocations)
EXIT_EQUAL, EXIT_DIFFERENT, EXIT_FAILED = 0, 1, 2
MAX_LISTED = 20  # differences listed per table (the count is always exact)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ReplayError(RuntimeError):
    """The replay could not run (source unavailable, scratch schema in use, ...)."""


# ---------------------------------------------------------------------------------------------
# The live order: the ledger's own event history
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decide:
    assessment_id: str  # the application.assessed event id the live ledger decided on


@dataclass(frozen=True)
class Revoke:
    application_id: str
    reason: str
    revoked_by: str
    revoked_at: datetime
    event_id: uuid.UUID


Op = Decide | Revoke


def ops_from_history(rows: Iterable[tuple[str, dict[str, Any]]]) -> list[Op]:
    """(type, envelope) of the ledger's outbox in seq order → the operations to replay, in order."""
    ops: list[Op] = []
    for type_, env in rows:
        if type_ == "award.decided":
            ops.append(Decide(str(env["causation_id"])))
        elif type_ == "award.revoked":
            data = env["data"]
            ops.append(Revoke(str(data["application_id"]), str(data["reason"]), str(data["revoked_by"]),
                              datetime.fromisoformat(str(data["revoked_at"])), uuid.UUID(str(env["id"]))))
    return ops


# ---------------------------------------------------------------------------------------------
# State snapshots (the same queries on the live and the scratch schema)
# ---------------------------------------------------------------------------------------------

_STATE_QUERIES: dict[str, str] = {
    "pools": "SELECT account, cap_fen, committed_fen FROM pools",
    "decisions": "SELECT application_id, assessed_event_id::text, program, beneficiary, year, status, "
                 "entitlement_fen, awarded_fen, correlation_id, recorded_for, data::text FROM decisions",
    "awards": "SELECT application_id, program, beneficiary, year, subject, overlap_applicant, overlap_subject, "
              "overlap_milestone, amount_fen, draws::text, top_up_of, journal_seq, revoked FROM awards",
    "journal": "SELECT seq, hash, kind, application_id, event_id, postings::text, prev_hash, recorded_for "
               "FROM journal_entries",
    "head": "SELECT id, seq, hash FROM journal_head",
    "revocations": "SELECT application_id, reason, revoked_by, revoked_at, amount_fen, journal_seq, "
                   "event_id::text, data::text FROM revocations",
}

State = dict[str, dict[Any, tuple[Any, ...]]]


async def read_state(session: AsyncSession) -> State:
    state: State = {}
    for table, sql in _STATE_QUERIES.items():
        rows = (await session.execute(text(sql))).all()
        state[table] = {row[0]: tuple(row[1:]) for row in rows}
    return state


@dataclass
class LiveSnapshot:
    ops: list[Op]
    dead_lettered: set[str]  # assessment event ids the live ledger dead-lettered
    state: State


async def snapshot_live(maker: async_sessionmaker[AsyncSession]) -> LiveSnapshot:
    async with maker() as session, session.begin():
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        rows = await session.execute(text(
            "SELECT type, envelope::text FROM outbox WHERE type IN ('award.decided', 'award.revoked') ORDER BY seq"))
        ops = ops_from_history((r[0], orjson.loads(r[1])) for r in rows)
        dead = await session.execute(text(
            "SELECT envelope->>'causation_id' FROM outbox WHERE type = 'event.dead_lettered' "
            "AND envelope->>'causation_id' IS NOT NULL"))
        dead_lettered = {r[0] for r in dead}
        state = await read_state(session)
    return LiveSnapshot(ops, dead_lettered, state)


# ---------------------------------------------------------------------------------------------
# Sources of the assessment bodies
# ---------------------------------------------------------------------------------------------


@dataclass
class SourceRead:
    wanted: dict[str, bytes]  # event id → the envelope as published, for the ids the live ledger decided
    total: int = 0  # application.assessed events in the history
    others: list[str] = field(default_factory=list)  # ids in the history the live ledger did not decide on


def _keep(out: SourceRead, wanted_ids: set[str], raw: bytes, event_id: str) -> None:
    out.total += 1
    if event_id in wanted_ids:
        out.wanted.setdefault(event_id, raw)
    else:
        out.others.append(event_id)


async def read_from_outbox(database_url: str, schema: str, wanted_ids: set[str]) -> SourceRead:
    """The eligibility service's own event history (its outbox), oldest first."""
    engine = make_engine(database_url, schema, pool_size=1)
    out = SourceRead({})
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f'"{schema}".outbox'})
            if not exists:
                raise ReplayError(f"no outbox table in schema {schema!r}")
            result = await conn.stream(text(
                "SELECT id::text, envelope::text FROM outbox WHERE type = 'application.assessed' ORDER BY seq"))
            async for partition in result.partitions(2000):
                for event_id, envelope in partition:
                    _keep(out, wanted_ids, envelope.encode(), event_id)
    finally:
        await engine.dispose()
    return out


async def read_from_broker(bootstrap: str, topic: str, wanted_ids: set[str], timeout_s: float = 30.0) -> SourceRead:
    """Every partition of the assessments topic from the beginning up to the end offsets seen at the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    out = SourceRead({})
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ReplayError(f"topic {topic!r} not found on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = dict(await consumer.beginning_offsets(tps))  # the next offset to read, per partition
        # Read until every partition is past the end offset reported at the start AND the broker has been
        # quiet for a moment: some brokers (Tansu) report the end as the start of the last record batch.
        quiet_polls, deadline = 0, time.monotonic() + timeout_s
        while quiet_polls < 2:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if not any(batches.values()):
                if all(seen[tp] >= ends[tp] for tp in tps):
                    quiet_polls += 1
                elif time.monotonic() > deadline:
                    raise ReplayError(f"the broker did not serve {topic!r} up to its end offsets in time")
                continue
            quiet_polls, deadline = 0, time.monotonic() + timeout_s
            for tp, records in batches.items():
                for record in records:
                    seen[tp] = max(seen[tp], record.offset + 1)
                    raw = record.value or b""
                    try:
                        env = orjson.loads(raw)
                        event_id = str(env["id"]) if env.get("type") == "application.assessed" else None
                    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
                        event_id = None
                    if event_id is not None:
                        _keep(out, wanted_ids, raw, event_id)
    finally:
        await consumer.stop()
    return out


# ---------------------------------------------------------------------------------------------
# Applying the history to the scratch schema
# ---------------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    applied: int = 0  # operations applied (assessments decided + revocations)
    assessments: int = 0
    revocations: int = 0
    missing: list[str] = field(default_factory=list)  # assessment ids decided live, absent from the source
    dead_lettered: list[str] = field(default_factory=list)  # dead-lettered by the replay
    failed_revocations: list[str] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[int, int, float], None]


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
            # The scratch schema is rebuilt from scratch if lost; no need to wait for the WAL flush.
            await session.execute(text("SET LOCAL synchronous_commit = off"))
            pending: list[Event] = []
            for op in chunk:
                if isinstance(op, Decide):
                    event = _parse(op.assessment_id, bodies, result)
                    if event is not None:
                        pending.append(event)
                    continue
                await _decide(session, pending, result)
                pending = []
                await _revoke(session, op, result)
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
            await revoke_award(SqlLedgerRepository(session), op.application_id, reason=op.reason, revoked_by=op.revoked_by,
                               now=op.revoked_at, event_id=op.event_id)
        result.revocations += 1
    except Exception as exc:  # a diverged state: reported as a difference, the replay goes on
        result.failed_revocations.append(f"{op.application_id}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------

_COLUMNS = {
    "pools": ("cap_fen", "committed_fen"),
    "decisions": ("assessed_event_id", "program", "beneficiary", "year", "status", "entitlement_fen",
                  "awarded_fen", "correlation_id", "recorded_for", "data"),
    "awards": ("program", "beneficiary", "year", "subject", "overlap_applicant", "overlap_subject",
               "overlap_milestone", "amount_fen", "draws", "top_up_of", "journal_seq", "revoked"),
    "journal": ("hash", "kind", "application_id", "event_id", "postings", "prev_hash", "recorded_for"),
    "head": ("seq", "hash"),
    "revocations": ("reason", "revoked_by", "revoked_at", "amount_fen", "journal_seq", "event_id", "data"),
}


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    detail: str

    def line(self) -> str:
        what = "pool" if self.table == "pools" else self.table
        return f"{what} {self.key}: {self.detail}"


def _unused_pools(pools: dict[Any, tuple[Any, ...]], other: dict[Any, tuple[Any, ...]]) -> set[Any]:
    # A pool row is created when a batch names it, before deciding; one named only by an event that was
    # then skipped or dead-lettered stays at 0. Such a row on one side only is not a difference.
    return {k for k, (_cap, committed) in pools.items() if committed == 0 and k not in other}


def compare_states(live: State, replayed: State) -> list[Difference]:
    diffs: list[Difference] = []
    for table, columns in _COLUMNS.items():
        a, b = live.get(table, {}), replayed.get(table, {})
        if table == "pools":
            a = {k: v for k, v in a.items() if k not in _unused_pools(a, b)}
            b = {k: v for k, v in b.items() if k not in _unused_pools(b, a)}
        for key in sorted(set(a) | set(b), key=lambda k: (str(type(k)), k)):
            if key not in b:
                diffs.append(Difference(table, str(key), "in the live ledger, not in the replay"))
            elif key not in a:
                diffs.append(Difference(table, str(key), "in the replay, not in the live ledger"))
            elif a[key] != b[key]:
                parts = [f"{col} live {x!r} replay {y!r}" for col, x, y in zip(columns, a[key], b[key], strict=True)
                         if x != y]
                diffs.append(Difference(table, str(key), "; ".join(parts)))
    return diffs


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    equal: bool
    schema: str
    source: str
    ops: int
    assessments: int
    revocations: int
    history_assessments: int
    not_decided_live: int  # in the history, not decided live: duplicates, dead-lettered or still pending
    differences: list[Difference]
    problems: list[str]
    read_seconds: float
    apply_seconds: float
    total_seconds: float

    @property
    def events_per_s(self) -> float:
        return self.ops / self.apply_seconds if self.apply_seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"replay {'EQUAL' if self.equal else 'DIFFERENT'}: source={self.source} scratch schema={self.schema}",
            f"  history: {self.history_assessments} assessments read; {self.assessments} decided and "
            f"{self.revocations} revocations replayed in the live order ({self.ops} operations); "
            f"{self.not_decided_live} not decided live (duplicates, dead-lettered or pending)",
            f"  time: read {self.read_seconds:.2f}s, apply {self.apply_seconds:.2f}s "
            f"({self.events_per_s:,.0f} events/s), total {self.total_seconds:.2f}s",
        ]
        for problem in self.problems:
            lines.append(f"  problem: {problem}")
        if self.differences:
            by_table: dict[str, list[Difference]] = {}
            for d in self.differences:
                by_table.setdefault(d.table, []).append(d)
            lines.append(f"  {len(self.differences)} differences:")
            for table, diffs in by_table.items():
                lines.append(f"    {table}: {len(diffs)}")
                for d in diffs[:MAX_LISTED]:
                    lines.append(f"      {d.line()}")
                if len(diffs) > MAX_LISTED:
                    lines.append(f"      ... and {len(diffs) - MAX_LISTED} more")
        return "\n".join(lines)


def default_schema() -> str:
    return "ledger_replay_" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "_" + uuid.uuid4().hex[:4]


async def _prepare_scratch(engine: AsyncEngine, database_url: str, schema: str) -> None:
    async with engine.connect() as conn:
        in_use = await conn.scalar(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"), {"s": schema})
    if in_use:
        raise ReplayError(f"schema {schema!r} already has tables; choose another --schema")
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)


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
    if not _SCHEMA_NAME.match(schema) or schema in (live_schema, eligibility_schema):
        raise ReplayError(f"not a usable scratch schema name: {schema!r}")
    err = err if err is not None else sys.stderr
    started = time.perf_counter()
    live_engine = make_engine(database_url, live_schema, pool_size=2)
    scratch_engine = make_engine(database_url, schema, pool_size=2)
    created = False
    try:
        live = await snapshot_live(make_sessionmaker(live_engine))
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

        await _prepare_scratch(scratch_engine, database_url, schema)
        created = True

        def progress(done: int, total: int, seconds: float) -> None:
            rate = done / seconds if seconds > 0 else 0.0
            print(f"replay: {done}/{total} events ({rate:,.0f}/s)", file=err, flush=True)

        applied = await apply_history(make_sessionmaker(scratch_engine), live.ops, read.wanted,
                                      progress=progress, progress_every=progress_every)
        async with make_sessionmaker(scratch_engine)() as session:
            replayed = await read_state(session)
        differences = compare_states(live.state, replayed)
        problems = []
        if applied.missing:
            problems.append(f"{len(applied.missing)} assessments decided live are not in the {source} "
                            f"(first: {', '.join(applied.missing[:3])})")
        if applied.dead_lettered:
            problems.append(f"{len(applied.dead_lettered)} assessments decided live were dead-lettered on replay "
                            f"(first: {'; '.join(applied.dead_lettered[:3])})")
        if applied.failed_revocations:
            problems.append(f"{len(applied.failed_revocations)} revocations failed on replay "
                            f"(first: {'; '.join(applied.failed_revocations[:3])})")
        return ReplayReport(
            equal=not differences and not problems, schema=schema, source=source, ops=applied.applied,
            assessments=applied.assessments, revocations=applied.revocations, history_assessments=read.total,
            not_decided_live=len(set(read.others)), differences=differences, problems=problems,
            read_seconds=read_seconds, apply_seconds=applied.seconds, total_seconds=time.perf_counter() - started,
        )
    finally:
        if created and not keep:
            async with live_engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await scratch_engine.dispose()
        await live_engine.dispose()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grantline-replay",
        description="Rebuild the ledger from the event history into a scratch schema and compare it with the "
                    "live ledger. Exit 0 when equal, 1 with the differences, 2 when the replay could not run.",
    )
    parser.add_argument("--source", choices=("broker", "outbox"), default="broker",
                        help="where the assessments come from: the broker's topic from the beginning, or the "
                             "eligibility service's outbox (its event history) (default: broker)")
    parser.add_argument("--schema", help="scratch schema (default: ledger_replay_<timestamp>)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema afterwards")
    parser.add_argument("--progress-every", type=int, default=10_000, metavar="N",
                        help="a progress line on stderr every N events (default 10000)")
    parser.add_argument("--live-schema", default="ledger", help=argparse.SUPPRESS)
    parser.add_argument("--eligibility-schema", default="eligibility", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings: Settings = get_settings()
    try:
        report = asyncio.run(run_replay(
            settings.database_url, source=args.source, schema=args.schema, keep=args.keep,
            bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace,
            live_schema=args.live_schema, eligibility_schema=args.eligibility_schema,
            progress_every=max(1, args.progress_every),
        ))
    except ReplayError as exc:
        print(f"grantline-replay: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"grantline-replay: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(report.summary())
    return EXIT_EQUAL if report.equal else EXIT_DIFFERENT


if __name__ == "__main__":
    sys.exit(main())
