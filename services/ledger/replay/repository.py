"""Where the replay reads and writes: the live ledger's history and state, the assessment history
(the eligibility outbox or the broker topic), and the scratch schema. Every SQL statement of the
replay is here; the ledger's own writes go through the ledger's handlers and repository."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.ledger.journal.domain import pool_account
from services.ledger.replay.domain import (
    STATE_COLUMNS,
    LiveSnapshot,
    ReplayError,
    SourceRead,
    State,
    ops_from_history,
)
from services.ledger.repository import SqlLedgerRepository, stored_draws
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from shared.db.uow import snapshot

# ---------------------------------------------------------------------------------------------
# State snapshots (the same reads on the live and the scratch schema)
# ---------------------------------------------------------------------------------------------

# Each selects the key, then the columns of domain.STATE_COLUMNS in that order. Pools are the
# ledger's one pool snapshot (SqlLedgerRepository.pool_balances). A decision's data published before
# reviews has no `review`, which award.decided reads as auto (replay now writes it): compared as auto.
_STATE_QUERIES: dict[str, str] = {
    "decisions": "SELECT application_id, assessed_event_id::text, program, beneficiary, year, status, "
                 "entitlement_fen, awarded_fen, correlation_id, recorded_for, "
                 "(jsonb_build_object('review', 'auto') || data)::text, review_basis::text FROM decisions",
    "awards": "SELECT application_id, program, beneficiary, year, subject, overlap_applicant, overlap_subject, "
              "overlap_milestone, amount_fen, draws, top_up_of, journal_seq, revoked, overlap_key, review FROM awards",
    "journal": "SELECT seq, hash, kind, application_id, event_id, postings::text, prev_hash, recorded_for "
               "FROM journal_entries",
    "head": "SELECT id, seq, hash FROM journal_head",
    "revocations": "SELECT application_id, reason, revoked_by, revoked_at, amount_fen, journal_seq, "
                   "event_id::text, data::text, redecides FROM revocations",
    "reviews": "SELECT application_id, decision, held_fen, awarded_fen, reason, reviewed_by, reviewed_by_name, "
               "reviewed_at, journal_seq, event_id::text, data::text FROM reviews",
}


async def read_state(session: AsyncSession) -> State:
    pools = await SqlLedgerRepository(session).pool_balances()
    state: State = {"pools": {pool_account(b.key): (b.cap_fen, b.committed_fen) for b in pools}}
    for table, sql in _STATE_QUERIES.items():
        rows = (await session.execute(text(sql))).all()
        state[table] = {row[0]: tuple(row[1:]) for row in rows}
    # Draws compared as (account, fen) pairs: a live row may still spell its amounts the old way.
    draws_at = STATE_COLUMNS["awards"].index("draws")
    state["awards"] = {
        key: (*values[:draws_at], _draws(values[draws_at]), *values[draws_at + 1:])
        for key, values in state["awards"].items()
    }
    return {table: state[table] for table in STATE_COLUMNS}


def _draws(stored: Any) -> tuple[tuple[str, int], ...]:
    return tuple((pool_account(key), amount) for key, amount in stored_draws(stored))


async def read_live(maker: async_sessionmaker[AsyncSession]) -> LiveSnapshot:
    """From one snapshot of the live ledger: the operations in the order it applied them (its
    decisions, revocations and reviews), the
    assessment event ids it dead-lettered, and its state."""
    async with maker() as session, snapshot(session):
        rows = await session.execute(text(
            "SELECT o.type, o.envelope->>'causation_id', CASE WHEN o.type IN ('award.revoked', 'award.reviewed') "
            "THEN o.envelope::text END, r.redecides FROM outbox o LEFT JOIN revocations r ON r.event_id = o.id "
            "WHERE o.type IN ('award.decided', 'award.revoked', 'award.reviewed') ORDER BY o.seq"))
        ops = ops_from_history((r[0], r[1], r[2], r[3]) for r in rows)
        dead = await session.execute(text(
            "SELECT envelope->>'causation_id' FROM outbox WHERE type = 'event.dead_lettered' "
            "AND envelope->>'causation_id' IS NOT NULL"))
        dead_lettered = {r[0] for r in dead}
        state = await read_state(session)
    return LiveSnapshot(ops, dead_lettered, state)


# ---------------------------------------------------------------------------------------------
# Sources of the assessment bodies
# ---------------------------------------------------------------------------------------------


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
                    out.keep(wanted_ids, envelope.encode(), event_id)
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
                        out.keep(wanted_ids, raw, event_id)
    finally:
        await consumer.stop()
    return out


# ---------------------------------------------------------------------------------------------
# The scratch schema
# ---------------------------------------------------------------------------------------------


async def prepare_scratch(engine: AsyncEngine, database_url: str, schema: str) -> None:
    """Migrate a new scratch schema with the ledger's own migrations; refuse one that has tables."""
    async with engine.connect() as conn:
        in_use = await conn.scalar(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"), {"s": schema})
    if in_use:
        raise ReplayError(f"schema {schema!r} already has tables; choose another --schema")
    await asyncio.to_thread(upgrade, database_url, "ledger", schema)


async def drop_scratch(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def without_waiting_for_the_wal(session: AsyncSession) -> None:
    """The scratch schema is rebuilt from scratch if lost: its commits need not wait for the WAL flush."""
    await session.execute(text("SET LOCAL synchronous_commit = off"))
