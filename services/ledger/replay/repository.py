"""Where the replay reads and writes: the live ledger's history and state, the assessment history
(the eligibility outbox or the broker topic), and the scratch schema. Every SQL statement of the
replay is here; the ledger's own writes go through the ledger's handlers and repository."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.ledger.journal.domain import pool_account
from services.ledger.replay.domain import (
    PAYMENT_TYPES,
    STATE_COLUMNS,
    HistoryRow,
    LiveSnapshot,
    PayeeEvent,
    ReplayError,
    SourceRead,
    State,
    plan_history,
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
    "payees": "SELECT application_id, applicant_id, partner_id, account_name, account_number, bank_code, updated_at, "
              "event_id FROM payees",
    "payment_orders": "SELECT id, application_id, partner_id, applicant_id, program, year, amount_fen, status, batch_id, "
                      "reason_code, reason, finalized_event_id, updated_at FROM payment_orders",
    "payment_batches": "SELECT id, status, program, year, count, control_sum_fen, created_by::text, created_at, "
                       "approved_by::text, approved_at, sent_at, encode(sha256(document), 'hex') FROM payment_batches",
    "payment_batch_items": "SELECT batch_id || ' ' || order_id, position, amount_fen, account_name, account_number, "
                           "bank_code, status FROM payment_batch_items",
    "payment_events": "SELECT id::text, type, envelope::text FROM outbox WHERE type LIKE 'payment.%'",
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


# The consumers whose inbox places payments in the live order (services.ledger.app's subscriptions).
PAYEES_CONSUMER, FINALIZED_CONSUMER = "ledger.payees", "ledger.payments"
_REPLAYED_TYPES = ("award.decided", "award.revoked", "award.reviewed", *PAYMENT_TYPES)


async def read_live(maker: async_sessionmaker[AsyncSession]) -> LiveSnapshot:
    """From one snapshot of the live ledger: the operations in the order it applied them (its
    decisions, revocations, reviews and payment steps), the assessment event ids it dead-lettered,
    its state, and when it handled each payee event (its inbox)."""
    async with maker() as session, snapshot(session):
        rows = await session.execute(text(
            "SELECT o.seq, o.type, o.envelope->>'causation_id', CASE WHEN o.type <> 'award.decided' "
            "THEN o.envelope::text END, r.redecides, o.created_at FROM outbox o "
            "LEFT JOIN revocations r ON r.event_id = o.id WHERE o.type = ANY(CAST(:types AS text[])) ORDER BY o.seq"),
            {"types": list(_REPLAYED_TYPES)})
        history = [HistoryRow(*r) for r in rows]
        pays = bool(await session.scalar(text(
            "SELECT EXISTS (SELECT 1 FROM payees) OR EXISTS (SELECT 1 FROM payment_orders)")))
        finalized: set[str] = set()
        handled: dict[str, Any] = {}
        if pays:
            finalized = set((await session.execute(text(
                "SELECT event_id::text FROM inbox WHERE consumer = :c UNION SELECT finalized_event_id FROM "
                "payment_orders"), {"c": FINALIZED_CONSUMER})).scalars())
            handled = {r[0]: r[1] for r in await session.execute(text(
                "SELECT event_id::text, handled_at FROM inbox WHERE consumer = :c"), {"c": PAYEES_CONSUMER})}
        plan = plan_history(history, finalized)
        del history
        dead = await session.execute(text(
            "SELECT envelope->>'causation_id' FROM outbox WHERE type = 'event.dead_lettered' "
            "AND envelope->>'causation_id' IS NOT NULL"))
        dead_lettered = {r[0] for r in dead}
        state = await read_state(session)
    return LiveSnapshot(plan, dead_lettered, state, handled, pays)


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


_PAYEE_TYPES = frozenset({"application.received", "payee.updated"})


def _payee_event(env: Any) -> str | None:
    """The application a payee event is for, or None for any other event (or a receipt without a payee)."""
    if not isinstance(env, dict) or env.get("type") not in _PAYEE_TYPES:
        return None
    data = env.get("data")
    if not isinstance(data, dict) or not data.get("payee") or not isinstance(data.get("application_id"), str):
        return None
    return str(data["application_id"])


async def read_payees_from_outbox(database_url: str, schema: str, handled: dict[str, Any]) -> tuple[
        dict[str, bytes], list[PayeeEvent]]:
    """The payee events intake published (its outbox), oldest first, that the live ledger handled."""
    engine = make_engine(database_url, schema, pool_size=1)
    bodies: dict[str, bytes] = {}
    events: list[PayeeEvent] = []
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f'"{schema}".outbox'})
            if not exists:
                raise ReplayError(f"no outbox table in schema {schema!r}")
            result = await conn.stream(text(
                "SELECT id::text, subject, envelope::text FROM outbox WHERE type = 'payee.updated' OR "
                "(type = 'application.received' AND jsonb_typeof(envelope->'data'->'payee') = 'object') ORDER BY seq"))
            async for partition in result.partitions(2000):
                for event_id, subject, envelope in partition:
                    if event_id in handled and event_id not in bodies:
                        bodies[event_id] = envelope.encode()
                        events.append(PayeeEvent(event_id, subject, handled[event_id]))
    finally:
        await engine.dispose()
    return bodies, events


async def read_payees_from_broker(bootstrap: str, topic: str, handled: dict[str, Any]) -> tuple[
        dict[str, bytes], list[PayeeEvent]]:
    """The payee events on the applications topic, from the beginning, that the live ledger handled."""
    bodies: dict[str, bytes] = {}
    events: list[PayeeEvent] = []

    def keep(env: Any, raw: bytes) -> None:
        application_id = _payee_event(env)
        event_id = str(env.get("id")) if application_id is not None else None
        if event_id is not None and application_id is not None and event_id in handled and event_id not in bodies:
            bodies[event_id] = raw
            events.append(PayeeEvent(event_id, application_id, handled[event_id]))

    await _read_topic(bootstrap, topic, keep)
    return bodies, events


async def read_from_broker(bootstrap: str, topic: str, wanted_ids: set[str], timeout_s: float = 30.0) -> SourceRead:
    """Every partition of the assessments topic from the beginning up to the end offsets seen at the start."""
    out = SourceRead({})

    def keep(env: Any, raw: bytes) -> None:
        if isinstance(env, dict) and env.get("type") == "application.assessed" and "id" in env:
            out.keep(wanted_ids, raw, str(env["id"]))

    await _read_topic(bootstrap, topic, keep, timeout_s)
    return out


async def _read_topic(bootstrap: str, topic: str, keep: Callable[[Any, bytes], None], timeout_s: float = 30.0) -> None:
    """Every record of every partition of `topic`, from the beginning up to the end offsets seen at
    the start, to `keep(envelope as parsed or None, raw bytes)`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
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
                    except orjson.JSONDecodeError:
                        env = None
                    keep(env, raw)
    finally:
        await consumer.stop()


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
