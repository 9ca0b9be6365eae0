"""The ledger's tables: loading and locking pools, the journal head, live awards; writing in bulk.

Lock order, the same for every writer (batch handler, revocation), so no two instances deadlock:
1. pool rows, created if missing (INSERT ... ON CONFLICT DO NOTHING) then locked FOR UPDATE, both
   in services.ledger.domain.lock_order;
2. the single journal_head row, last. Holding it serialises every write to the journal (and so
   every decision), which also makes the overlap and one-decision-per-application reads exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.domain import Award, OverlapKey, PoolKey, PoolSpec, PoolState, lock_order
from services.ledger.journal.domain import JournalEntry, Posting, parse_pool_account, pool_account


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _copy(session: AsyncSession, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
    """Append rows with COPY (binary) on the session's own connection, in its transaction.

    The cheapest bulk insert PostgreSQL has: no statement to parse or plan, no arrays to unpack;
    defaults, constraints, indexes and triggers apply as for INSERT. The table resolves through
    the connection's search_path (the service's schema), as every other statement here.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection  # the asyncpg connection
    if driver is None:
        raise RuntimeError("the session's connection is closed")
    await driver.copy_records_to_table(table, records=records, columns=list(columns))


# ---------------------------------------------------------------------------------------------
# Pools and the journal head: create, lock, write back
# ---------------------------------------------------------------------------------------------


async def lock_pools(session: AsyncSession, specs: Iterable[PoolSpec]) -> dict[PoolKey, PoolState]:
    """Create the missing pool rows, then lock every row once, all in lock order."""
    by_key: dict[PoolKey, PoolSpec] = {}
    for spec in specs:
        by_key.setdefault(spec.key, spec)
    if not by_key:
        return {}
    ordered = lock_order(by_key)
    rows = [
        {"account": pool_account(k), "pool": k.pool, "scope": by_key[k].scope, "beneficiary": k.beneficiary,
         "year": k.year, "subject": k.subject, "cap": by_key[k].cap_fen, "citation": by_key[k].citation}
        for k in ordered
    ]
    await session.execute(
        text(
            "INSERT INTO pools (account, pool, scope, beneficiary, year, subject, cap_fen, committed_fen, citation) "
            "SELECT a, p, s, b, y, sj, c, 0, ct FROM unnest(CAST(:account AS text[]), CAST(:pool AS text[]), "
            "CAST(:scope AS text[]), CAST(:beneficiary AS text[]), CAST(:year AS int[]), "
            "CAST(:subject AS text[]), CAST(:cap AS bigint[]), CAST(:citation AS text[])) "
            "WITH ORDINALITY AS u(a, p, s, b, y, sj, c, ct, ord) ORDER BY ord ON CONFLICT (account) DO NOTHING"
        ),
        {name: [r[name] for r in rows] for name in ("account", "pool", "scope", "beneficiary", "year",
                                                      "subject", "cap", "citation")},
    )
    return await lock_pool_rows(session, ordered)


async def lock_pool_rows(session: AsyncSession, keys: Iterable[PoolKey]) -> dict[PoolKey, PoolState]:
    """SELECT ... FOR UPDATE the existing rows of these pools, in lock order."""
    ordered = lock_order(keys)
    result = await session.execute(
        text(
            "SELECT p.account, p.cap_fen, p.committed_fen FROM unnest(CAST(:accounts AS text[])) "
            "WITH ORDINALITY AS k(account, ord) JOIN pools p ON p.account = k.account "
            "ORDER BY k.ord FOR UPDATE OF p"
        ),
        {"accounts": [pool_account(k) for k in ordered]},
    )
    states: dict[PoolKey, PoolState] = {}
    for row in result:
        key = parse_pool_account(row.account)
        states[key] = PoolState(key, row.cap_fen, row.committed_fen)
    if len(states) != len(ordered):
        raise RuntimeError("a pool row is missing")
    return states


async def write_pools(session: AsyncSession, before: dict[PoolKey, PoolState],
                      after: dict[PoolKey, PoolState]) -> int:
    """Write back each changed pool row once."""
    changed = [k for k in lock_order(after) if after[k].committed_fen != before[k].committed_fen]
    if changed:
        await session.execute(
            text(
                "UPDATE pools p SET committed_fen = u.c FROM unnest(CAST(:a AS text[]), CAST(:c AS bigint[])) "
                "AS u(a, c) WHERE p.account = u.a"
            ),
            {"a": [pool_account(k) for k in changed], "c": [after[k].committed_fen for k in changed]},
        )
    return len(changed)


@dataclass
class Head:
    seq: int
    hash: str


async def lock_head(session: AsyncSession) -> Head:
    row = (await session.execute(text("SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE"))).one()
    return Head(row.seq, row.hash)


async def write_head(session: AsyncSession, head: Head) -> None:
    await session.execute(text("UPDATE journal_head SET seq = :s, hash = :h WHERE id = 1"),
                          {"s": head.seq, "h": head.hash})


# ---------------------------------------------------------------------------------------------
# Decisions and awards
# ---------------------------------------------------------------------------------------------


async def decided_among(session: AsyncSession, application_ids: Sequence[str]) -> set[str]:
    if not application_ids:
        return set()
    rows = await session.execute(
        text("SELECT application_id FROM decisions WHERE application_id = ANY(CAST(:ids AS text[]))"),
        {"ids": list(application_ids)},
    )
    return {r[0] for r in rows}


def _draws_wire(draws: Iterable[tuple[PoolKey, int]]) -> list[dict[str, Any]]:
    return [{"account": pool_account(k), "amount": amount} for k, amount in draws]


def award_from_row(row: Any) -> Award:
    return Award(
        application_id=row.application_id,
        program=row.program,
        beneficiary=row.beneficiary,
        overlap=OverlapKey(row.overlap_applicant, row.overlap_subject, row.overlap_milestone),
        amount_fen=row.amount_fen,
        draws=tuple((parse_pool_account(d["account"]), int(d["amount"])) for d in row.draws),
        top_up_of=row.top_up_of,
    )


_AWARD_COLUMNS = (
    "application_id, program, beneficiary, year, subject, overlap_applicant, overlap_subject, "
    "overlap_milestone, amount_fen, draws, top_up_of, journal_seq, revoked"
)


async def live_awards(session: AsyncSession, overlaps: Iterable[OverlapKey]) -> dict[OverlapKey, list[Award]]:
    """The live awards of each overlap key, in decision (journal) order."""
    keys = list(dict.fromkeys(overlaps))
    out: dict[OverlapKey, list[Award]] = {k: [] for k in keys}
    if not keys:
        return out
    rows = await session.execute(
        text(
            f"SELECT {_AWARD_COLUMNS} FROM awards a JOIN unnest(CAST(:ap AS text[]), CAST(:sj AS text[]), "
            "CAST(:ms AS text[])) AS k(ap, sj, ms) ON a.overlap_applicant = k.ap AND a.overlap_subject = k.sj "
            "AND a.overlap_milestone = k.ms WHERE NOT a.revoked ORDER BY a.journal_seq"
        ),
        {"ap": [k.applicant for k in keys], "sj": [k.subject for k in keys], "ms": [k.milestone for k in keys]},
    )
    for row in rows:
        award = award_from_row(row)
        out[award.overlap].append(award)
    return out


@dataclass
class DecisionRow:
    application_id: str
    assessed_event_id: uuid.UUID
    decided_event_id: uuid.UUID
    program: str
    beneficiary: str
    year: int
    status: str
    entitlement_fen: int
    awarded_fen: int
    correlation_id: str
    recorded_for: str
    data: dict[str, Any]


@dataclass
class AwardRow:
    award: Award
    year: int
    subject: str
    journal_seq: int


_DECISION_COLUMNS = ("application_id", "assessed_event_id", "decided_event_id", "program", "beneficiary", "year",
                     "status", "entitlement_fen", "awarded_fen", "correlation_id", "recorded_for", "data")


async def insert_decisions(session: AsyncSession, rows: Sequence[DecisionRow]) -> None:
    """In the given order (decisions.seq, an identity, numbers them in it)."""
    if not rows:
        return
    await _copy(session, "decisions", _DECISION_COLUMNS, [
        (r.application_id, r.assessed_event_id, r.decided_event_id, r.program, r.beneficiary, r.year, r.status,
         r.entitlement_fen, r.awarded_fen, r.correlation_id, r.recorded_for, _json(r.data))
        for r in rows
    ])


_AWARD_INSERT_COLUMNS = ("application_id", "program", "beneficiary", "year", "subject", "overlap_applicant",
                         "overlap_subject", "overlap_milestone", "amount_fen", "draws", "top_up_of", "journal_seq")


async def insert_awards(session: AsyncSession, rows: Sequence[AwardRow]) -> None:
    if not rows:
        return
    records = []
    for r in rows:
        award = r.award
        overlap = award.overlap
        records.append((award.application_id, award.program, award.beneficiary, r.year, r.subject, overlap.applicant,
                        overlap.subject, overlap.milestone, award.amount_fen, _json(_draws_wire(award.draws)),
                        award.top_up_of, r.journal_seq))
    await _copy(session, "awards", _AWARD_INSERT_COLUMNS, records)


# ---------------------------------------------------------------------------------------------
# Journal
# ---------------------------------------------------------------------------------------------


def postings_wire(postings: Iterable[Posting]) -> list[dict[str, Any]]:
    return [p.to_canonical() for p in postings]


_ENTRY_INSERT_COLUMNS = ("seq", "kind", "application_id", "event_id", "postings", "prev_hash", "hash", "recorded_for")


async def insert_entries(session: AsyncSession, entries: Sequence[JournalEntry]) -> None:
    if not entries:
        return
    await _copy(session, "journal_entries", _ENTRY_INSERT_COLUMNS, [
        (e.seq, e.kind, e.application_id, e.event_id, _json(postings_wire(e.postings)), e.prev_hash, e.hash,
         e.recorded_for)
        for e in entries
    ])


def entry_from_row(row: Any) -> JournalEntry:
    postings = row.postings if isinstance(row.postings, list) else []
    return JournalEntry(
        seq=row.seq,
        kind=row.kind,
        application_id=row.application_id,
        event_id=row.event_id,
        postings=tuple(
            Posting(str(p.get("account")), p.get("amount"))  # type: ignore[arg-type]  # as stored: verify_chain judges
            for p in postings
            if isinstance(p, dict)
        ),
        prev_hash=row.prev_hash,
        hash=row.hash,
        recorded_for=row.recorded_for,
    )


_ENTRY_COLUMNS = "seq, kind, application_id, event_id, postings, prev_hash, hash, recorded_for"


async def journal_page(session: AsyncSession, after: int, limit: int) -> list[JournalEntry]:
    rows = await session.execute(
        text(f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE seq > :after ORDER BY seq LIMIT :n"),
        {"after": after, "n": limit},
    )
    return [entry_from_row(r) for r in rows]


async def whole_journal(session: AsyncSession) -> list[JournalEntry]:
    rows = await session.execute(text(f"SELECT {_ENTRY_COLUMNS} FROM journal_entries ORDER BY seq"))
    return [entry_from_row(r) for r in rows]


async def entry_for(session: AsyncSession, seq: int) -> JournalEntry:
    row = (
        await session.execute(text(f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE seq = :s"), {"s": seq})
    ).one()
    return entry_from_row(row)


async def head_row(session: AsyncSession) -> Head:
    row = (await session.execute(text("SELECT seq, hash FROM journal_head WHERE id = 1"))).one()
    return Head(row.seq, row.hash)


async def pools_committed(session: AsyncSession) -> dict[PoolKey, int]:
    rows = await session.execute(text("SELECT account, committed_fen FROM pools"))
    return {parse_pool_account(r.account): r.committed_fen for r in rows}

