"""Every SQL statement of the ledger's tables (the dashboard and replay keep their own reads in
their sub-packages' repositories).

Lock order, the same for every writer (batch handler, revocation), so no two instances deadlock:
1. pool rows, created if missing (INSERT ... ON CONFLICT DO NOTHING) then locked FOR UPDATE, both
   in services.ledger.domain.lock_order;
2. the single journal_head row, last. Holding it serialises every write to the journal (and so
   every decision), which also makes the overlap and one-decision-per-application reads exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.audit.domain import Checkpoint, CheckpointRef, PoolRow
from services.ledger.domain import (
    REVIEW_AUTO,
    Assessment,
    Award,
    AwardListing,
    AwardRow,
    ChainMember,
    DecisionRow,
    DecisionUpdate,
    Draw,
    ListFilter,
    OverlapKey,
    PoolBalance,
    PoolKey,
    PoolSpec,
    PoolState,
    RevocableAward,
    RevocationNote,
    RevocationRow,
    SubjectClash,
    lock_order,
)
from services.ledger.journal.domain import (
    JournalEntry,
    JournalHead,
    entry_of_row,
    parse_pool_account,
    pool_account,
)
from shared.contracts.events import ANY_BENEFICIARY, AwardDecided
from shared.messaging.outbox import PublishingRepository


def json_text(value: Any) -> str:
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


def filter_clause(filters: ListFilter, alias: str, program_expr: str) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a list filtered by beneficiary, year and program (`program_expr` says
    where a table keeps its program: a column, or the first part of a pool's name)."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    if filters.beneficiary is not None:
        where.append(f"{alias}beneficiary = :beneficiary")
        params["beneficiary"] = filters.beneficiary
    if filters.year is not None:
        where.append(f"{alias}year = :year")
        params["year"] = filters.year
    if filters.program is not None:
        where.append(f"{program_expr} = :program")
        params["program"] = filters.program
    return " AND ".join(where), params


# A pool's program is the first part of its name (`GT-EQUITY/beneficiary-year`).
POOL_PROGRAM = "split_part({alias}pool, '/', 1)"

# The balances order, NULLs spelt out so that a page can start after a row with a row comparison:
# beneficiary, pool, year (none first), subject (none last).
_POOL_ORDER_KEY = ("p.beneficiary, p.pool, p.year IS NOT NULL, coalesce(p.year, 0), p.subject IS NULL, "
                   "coalesce(p.subject, '')")
_POOL_ORDERS = {
    "key": _POOL_ORDER_KEY,
    # The dashboard's: nearest exhaustion first.
    "utilisation": "CASE WHEN p.cap_fen = 0 THEN 1 ELSE p.committed_fen::numeric / p.cap_fen END DESC, "
                   "p.cap_fen - p.committed_fen, p.account",
}
PoolOrder = Literal["key", "utilisation"]


def _pool_after(key: PoolKey) -> dict[str, Any]:
    return {"after_b": key.beneficiary, "after_p": key.pool, "after_yn": key.year is not None,
            "after_y": key.year or 0, "after_sn": key.subject is None, "after_s": key.subject or ""}


class SqlLedgerRepository(PublishingRepository):
    """The ledger's tables through one session (its transaction is the caller's)."""

    # -----------------------------------------------------------------------------------------
    # Pools and the journal head: create, lock, write back
    # -----------------------------------------------------------------------------------------

    async def lock_pools(self, specs: Iterable[PoolSpec]) -> tuple[dict[PoolKey, PoolKey], dict[PoolKey, PoolState]]:
        """Create the missing pool rows, then lock every row once, all in lock order.

        A pool with a subject key is the row of that key, whatever spelling opened it (the unique
        index pools_one_per_subject_key keeps it one row): returns where each spec's pool was found
        (the receipt's key → the row's key, for those found under another spelling) and the locked
        states by the rows' keys."""
        by_key: dict[PoolKey, PoolSpec] = {}
        for spec in specs:
            by_key.setdefault(spec.key, spec)
        if not by_key:
            return {}, {}
        ordered = lock_order(by_key)
        rows = [
            {"account": pool_account(k), "pool": k.pool, "scope": by_key[k].scope, "beneficiary": k.beneficiary,
             "year": k.year, "subject": k.subject, "cap": by_key[k].cap_fen, "citation": by_key[k].citation,
             "subject_key": by_key[k].subject_key}
            for k in ordered
        ]
        names = ("account", "pool", "scope", "beneficiary", "year", "subject", "cap", "citation", "subject_key")
        # ON CONFLICT without a target: a row of the same account, or of the same subject key, is there.
        await self.session.execute(
            text(
                "INSERT INTO pools (account, pool, scope, beneficiary, year, subject, cap_fen, committed_fen, citation, "
                "subject_key) SELECT a, p, s, b, y, sj, c, 0, ct, k FROM unnest(CAST(:account AS text[]), "
                "CAST(:pool AS text[]), CAST(:scope AS text[]), CAST(:beneficiary AS text[]), CAST(:year AS int[]), "
                "CAST(:subject AS text[]), CAST(:cap AS bigint[]), CAST(:citation AS text[]), "
                "CAST(:subject_key AS text[])) WITH ORDINALITY AS u(a, p, s, b, y, sj, c, ct, k, ord) ORDER BY ord "
                "ON CONFLICT DO NOTHING"
            ),
            {name: [r[name] for r in rows] for name in names},
        )
        found_at = await self._rows_of_keys([by_key[k] for k in ordered if by_key[k].subject_key is not None])
        return found_at, await self.lock_pool_rows({found_at.get(k, k) for k in ordered})

    async def _rows_of_keys(self, specs: Sequence[PoolSpec]) -> dict[PoolKey, PoolKey]:
        """The row each keyed spec's pool is (only those at another key than the spec's own)."""
        if not specs:
            return {}
        result = await self.session.execute(
            text(
                "SELECT k.ord, p.account FROM unnest(CAST(:pool AS text[]), CAST(:beneficiary AS text[]), "
                "CAST(:year AS int[]), CAST(:subject_key AS text[])) WITH ORDINALITY AS k(pool, beneficiary, year, "
                "subject_key, ord) JOIN pools p ON p.pool = k.pool AND p.beneficiary = k.beneficiary "
                "AND p.year IS NOT DISTINCT FROM k.year AND p.subject_key = k.subject_key"
            ),
            {"pool": [s.key.pool for s in specs], "beneficiary": [s.key.beneficiary for s in specs],
             "year": [s.key.year for s in specs], "subject_key": [s.subject_key for s in specs]},
        )
        out: dict[PoolKey, PoolKey] = {}
        for ord_, account in result:
            spec, row = specs[ord_ - 1], parse_pool_account(account)
            if row != spec.key:
                out[spec.key] = row
        return out

    async def lock_pool_rows(self, keys: Iterable[PoolKey]) -> dict[PoolKey, PoolState]:
        """SELECT ... FOR UPDATE the existing rows of these pools, in lock order."""
        ordered = lock_order(keys)
        result = await self.session.execute(
            text(
                "SELECT p.account, p.cap_fen, p.committed_fen, p.cap_journaled FROM unnest(CAST(:accounts AS text[])) "
                "WITH ORDINALITY AS k(account, ord) JOIN pools p ON p.account = k.account "
                "ORDER BY k.ord FOR UPDATE OF p"
            ),
            {"accounts": [pool_account(k) for k in ordered]},
        )
        states: dict[PoolKey, PoolState] = {}
        for row in result:
            key = parse_pool_account(row.account)
            states[key] = PoolState(key, row.cap_fen, row.committed_fen, row.cap_journaled)
        if len(states) != len(ordered):
            raise RuntimeError("a pool row is missing")
        return states

    async def write_pools(self, before: dict[PoolKey, PoolState], after: dict[PoolKey, PoolState]) -> int:
        """Write back each changed pool row once (what it has committed, and whether the journal has its cap)."""
        changed = [k for k in lock_order(after) if (after[k].committed_fen, after[k].cap_journaled)
                   != (before[k].committed_fen, before[k].cap_journaled)]
        if changed:
            await self.session.execute(
                text(
                    "UPDATE pools p SET committed_fen = u.c, cap_journaled = u.j FROM unnest(CAST(:a AS text[]), "
                    "CAST(:c AS bigint[]), CAST(:j AS boolean[])) AS u(a, c, j) WHERE p.account = u.a"
                ),
                {"a": [pool_account(k) for k in changed], "c": [after[k].committed_fen for k in changed],
                 "j": [after[k].cap_journaled for k in changed]},
            )
        return len(changed)

    async def lock_head(self) -> JournalHead:
        row = (await self.session.execute(text("SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE"))).one()
        return JournalHead(row.seq, row.hash)

    async def write_head(self, head: JournalHead) -> None:
        await self.session.execute(text("UPDATE journal_head SET seq = :s, hash = :h WHERE id = 1"),
                                   {"s": head.seq, "h": head.hash})

    async def head(self) -> JournalHead:
        row = (await self.session.execute(text("SELECT seq, hash FROM journal_head WHERE id = 1"))).one()
        return JournalHead(row.seq, row.hash)

    async def beneficiary_names(self, beneficiaries: set[str]) -> dict[str, str | None]:
        """Each beneficiary's name as its latest decision gives it (the dashboard and the exports
        show it beside pools, which carry no names)."""
        beneficiaries = beneficiaries - {ANY_BENEFICIARY}
        if not beneficiaries:
            return {}
        rows = await self.session.execute(
            text("SELECT DISTINCT ON (beneficiary) beneficiary, data->'applicant'->>'name' AS name FROM decisions "
                 "WHERE beneficiary = ANY(CAST(:b AS text[])) ORDER BY beneficiary, seq DESC"),
            {"b": sorted(beneficiaries)},
        )
        return {r.beneficiary: r.name for r in rows}

    async def pool_balances(
        self,
        filters: ListFilter = ListFilter(),  # frozen: a shared default is safe
        *,
        accounts: Sequence[str] | None = None,
        after: PoolKey | None = None,
        limit: int | None = None,
        order: PoolOrder = "key",
    ) -> list[PoolBalance]:
        """The pools as stored, filtered, in `order` ("key": beneficiary, pool, year, subject;
        "utilisation": nearest exhaustion first), from after the row of `after` (key order), each
        with the part of its committed held for review."""
        where, params = filter_clause(filters, "p.", POOL_PROGRAM.format(alias="p."))
        if accounts is not None:
            where += " AND p.account = ANY(CAST(:accounts AS text[]))"
            params["accounts"] = list(accounts)
        if after is not None:
            where += (f" AND ({_POOL_ORDER_KEY}) > (:after_b, :after_p, :after_yn, :after_y, :after_sn, :after_s)")
            params.update(_pool_after(after))
        sql = (f"SELECT p.account, p.cap_fen, p.committed_fen, coalesce(h.held_fen, 0) AS held_fen FROM pools p "
               f"LEFT JOIN ({_HELD_BY_POOL}) h ON h.account = p.account WHERE {where} ORDER BY {_POOL_ORDERS[order]}")
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        rows = await self.session.execute(text(sql), params)
        return [PoolBalance(parse_pool_account(r.account), r.cap_fen, r.committed_fen, r.held_fen) for r in rows]

    # -----------------------------------------------------------------------------------------
    # Decisions and awards
    # -----------------------------------------------------------------------------------------

    async def decided_among(self, application_ids: Sequence[str]) -> set[str]:
        if not application_ids:
            return set()
        rows = await self.session.execute(
            text("SELECT application_id FROM decisions WHERE application_id = ANY(CAST(:ids AS text[]))"),
            {"ids": list(application_ids)},
        )
        return {r[0] for r in rows}

    async def decision_status(self, application_id: str) -> str | None:
        status: str | None = await self.session.scalar(
            text("SELECT status FROM decisions WHERE application_id = :a"), {"a": application_id})
        return status

    async def live_awards(self, overlaps: Iterable[OverlapKey]) -> dict[OverlapKey, list[Award]]:
        """The live awards of each overlap key (by subject key), the base first, then in decision
        (journal) order."""
        keys = list(dict.fromkeys(overlaps))
        out: dict[OverlapKey, list[Award]] = {k: [] for k in keys}
        if not keys:
            return out
        rows = await self.session.execute(
            text(
                f"SELECT {AWARD_COLUMNS} FROM awards a JOIN unnest(CAST(:ap AS text[]), CAST(:sj AS text[]), "
                "CAST(:ms AS text[])) AS k(ap, sj, ms) ON a.overlap_applicant = k.ap AND a.overlap_key = k.sj "
                "AND a.overlap_milestone = k.ms WHERE NOT a.revoked ORDER BY a.top_up_of IS NOT NULL, a.journal_seq"
            ),
            {"ap": [k.applicant for k in keys], "sj": [k.subject for k in keys], "ms": [k.milestone for k in keys]},
        )
        for row in rows:
            award = award_of(row)
            out[award.overlap].append(award)
        return out

    async def chain_pools(self, overlap: OverlapKey) -> set[PoolKey]:
        """The pools of an overlap chain's live applications (what re-deciding it locks)."""
        accounts = await self.session.scalars(
            text("SELECT DISTINCT unnest(d.pool_accounts) FROM decisions d LEFT JOIN awards a USING (application_id) "
                 "WHERE d.overlap_applicant = :ap AND d.overlap_key = :k AND d.overlap_milestone = :m "
                 "AND d.status <> 'ineligible' AND NOT coalesce(a.revoked, false)"),
            {"ap": overlap.applicant, "k": overlap.subject, "m": overlap.milestone},
        )
        return {parse_pool_account(a) for a in accounts}

    async def chain_members(self, overlap: OverlapKey) -> list[ChainMember]:
        """The live applications of an overlap chain (granted or not; not revoked, not ineligible),
        in decision order, each with its pools as their rows stand."""
        rows = (await self.session.execute(
            text(
                f"SELECT d.seq, d.application_id AS member, d.program AS decided_program, d.beneficiary AS applicant, "
                f"d.year AS decided_year, d.entitlement_fen, d.data AS decision, d.correlation_id AS decision_correlation, "
                f"d.pool_accounts, d.call_id AS decided_call_id, {AWARD_COLUMNS} FROM decisions d LEFT JOIN awards a USING (application_id) "
                "WHERE d.overlap_applicant = :ap AND d.overlap_key = :k AND d.overlap_milestone = :m "
                "AND d.status <> 'ineligible' AND NOT coalesce(a.revoked, false) ORDER BY d.seq"
            ),
            {"ap": overlap.applicant, "k": overlap.subject, "m": overlap.milestone},
        )).all()
        specs = await self._pool_specs({a for r in rows for a in r.pool_accounts or ()})
        members = []
        for r in rows:
            decision = AwardDecided.model_validate(r.decision)
            pools = tuple(sorted((specs[a] for a in r.pool_accounts or ()), key=lambda p: p.key.sort_key()))
            assessment = Assessment(
                application_id=r.member, program=r.decided_program, year=r.decided_year, applicant_id=r.applicant,
                subject=decision.subject or "", eligible=True, entitlement_fen=r.entitlement_fen, reasons=(),
                pools=pools, overlap=overlap, catalog_version=decision.catalog_version,
                review=decision.review or REVIEW_AUTO, call_id=r.decided_call_id,
            )
            award = award_of(r) if r.application_id is not None else None
            members.append(ChainMember(assessment, r.seq, award, decision, r.decision_correlation))
        return members

    async def _pool_specs(self, accounts: set[str]) -> dict[str, PoolSpec]:
        if not accounts:
            return {}
        rows = await self.session.execute(
            text("SELECT account, cap_fen, citation, scope, subject_key FROM pools "
                 "WHERE account = ANY(CAST(:a AS text[]))"), {"a": sorted(accounts)})
        return {r.account: PoolSpec(parse_pool_account(r.account), r.cap_fen, r.citation, r.scope, r.subject_key)
                for r in rows}

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> None:
        """In the given order (decisions.seq, an identity, numbers them in it)."""
        if not rows:
            return
        await _copy(self.session, "decisions", _DECISION_COLUMNS, [
            (r.application_id, r.assessed_event_id, r.decided_event_id, r.program, r.beneficiary, r.year,
             r.status, r.entitlement_fen, r.awarded_fen, r.correlation_id, r.recorded_for, json_text(r.data),
             *_chain_of(r), None if r.basis is None else json_text(r.basis.to_stored()), r.call_id)
            for r in rows
        ])

    async def update_decisions(self, rows: Sequence[DecisionUpdate]) -> None:
        """A re-decided application's decision as last published (its order, `seq`, stays)."""
        if not rows:
            return
        await self.session.execute(
            text("UPDATE decisions d SET status = u.s, awarded_fen = u.aw, decided_event_id = u.e, "
                 "data = CAST(u.d AS jsonb) FROM unnest(CAST(:a AS text[]), CAST(:s AS text[]), "
                 "CAST(:aw AS bigint[]), CAST(:e AS uuid[]), CAST(:d AS text[])) AS u(a, s, aw, e, d) "
                 "WHERE d.application_id = u.a"),
            {"a": [r.application_id for r in rows], "s": [r.status for r in rows],
             "aw": [r.awarded_fen for r in rows], "e": [r.decided_event_id for r in rows],
             "d": [json_text(r.data) for r in rows]},
        )

    async def insert_awards(self, rows: Sequence[AwardRow]) -> None:
        if not rows:
            return
        records = []
        for r in rows:
            award = r.award
            overlap = award.overlap
            records.append((award.application_id, award.program, award.beneficiary, r.year, r.subject,
                            overlap.applicant, r.overlap_subject or overlap.subject, overlap.milestone,
                            award.amount_fen, json_text(_draws_stored(award.draws)), award.top_up_of, r.journal_seq,
                            overlap.subject, award.review))
        await _copy(self.session, "awards", _AWARD_INSERT_COLUMNS, records)

    async def update_awards(self, awards: Sequence[Award]) -> None:
        """Re-decided or reviewed awards: amount, draws, base and review state. Those that become
        top-ups first, so that the one live base per chain (awards_one_live_chain) holds after each
        statement."""
        for becomes_base in (False, True):
            batch = [a for a in awards if (a.top_up_of is None) == becomes_base]
            if batch:
                await self.session.execute(
                    text("UPDATE awards a SET amount_fen = u.amt, draws = CAST(u.dr AS jsonb), top_up_of = u.t, "
                         "review = u.rv FROM unnest(CAST(:a AS text[]), CAST(:amt AS bigint[]), "
                         "CAST(:dr AS text[]), CAST(:t AS text[]), CAST(:rv AS text[])) AS u(a, amt, dr, t, rv) "
                         "WHERE a.application_id = u.a"),
                    {"a": [x.application_id for x in batch], "amt": [x.amount_fen for x in batch],
                     "dr": [json_text(_draws_stored(x.draws)) for x in batch], "t": [x.top_up_of for x in batch],
                     "rv": [x.review for x in batch]},
                )

    async def awards_page(self, filters: ListFilter, *, after: int | None = None,
                          limit: int | None = None) -> list[AwardListing]:
        """Granted awards in decision (journal) order, after journal seq `after`, at most `limit`."""
        where, params = filter_clause(filters, "a.", "a.program")
        if after is not None:
            where += " AND a.journal_seq > :after"
            params["after"] = after
        # The revoker's name from the ledger's staff directory (null for the bootstrap identities).
        sql = (f"SELECT {AWARD_COLUMNS}, r.reason, r.revoked_by, st.name AS revoked_by_name, r.revoked_at "
               f"FROM awards a LEFT JOIN revocations r USING (application_id) "
               f"LEFT JOIN staff st ON st.id = r.revoked_by WHERE {where} ORDER BY a.journal_seq")
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        rows = await self.session.execute(text(sql), params)
        return [
            AwardListing(award_row_of(r), RevocationNote(r.reason, r.revoked_by, r.revoked_at, r.revoked_by_name)
                         if r.revoked else None)
            for r in rows
        ]

    async def revocable_award(self, application_id: str) -> RevocableAward | None:
        """The granted (or held) award of this application with its decision, or None when nothing
        was granted or a reviewer rejected it."""
        row = (
            await self.session.execute(
                text(f"SELECT {AWARD_COLUMNS}, d.data AS decision, d.correlation_id AS decision_correlation "
                     "FROM awards a JOIN decisions d USING (application_id) WHERE a.application_id = :a "
                     "AND a.review IS DISTINCT FROM 'rejected'"),
                {"a": application_id},
            )
        ).one_or_none()
        if row is None:
            return None
        return RevocableAward(award_row_of(row), AwardDecided.model_validate(row.decision), row.decision_correlation)

    # -----------------------------------------------------------------------------------------
    # Revocations
    # -----------------------------------------------------------------------------------------

    async def revocation_data(self, application_id: str) -> dict[str, Any] | None:
        """The award.revoked data of this application's revocation, if it was revoked."""
        data = await self.session.scalar(text("SELECT data FROM revocations WHERE application_id = :a"),
                                         {"a": application_id})
        return dict(data) if data is not None else None

    async def insert_revocation(self, row: RevocationRow) -> None:
        """The revocation's audit row, and its award marked revoked."""
        await self.session.execute(text("UPDATE awards SET revoked = true WHERE application_id = :a"),
                                   {"a": row.application_id})
        await self.session.execute(
            text("INSERT INTO revocations (application_id, reason, revoked_by, revoked_at, amount_fen, "
                 "journal_seq, event_id, data, redecides) VALUES (:a, :r, :by, :at, :amt, :j, :e, CAST(:d AS jsonb), "
                 ":rd)"),
            {"a": row.application_id, "r": row.reason, "by": row.revoked_by, "at": row.revoked_at,
             "amt": row.amount_fen, "j": row.journal_seq, "e": row.event_id, "d": json_text(row.data),
             "rd": row.redecides},
        )

    # -----------------------------------------------------------------------------------------
    # Subject clashes (found by the subject-key migration)
    # -----------------------------------------------------------------------------------------

    async def subject_clashes(self, *, after: int | None = None, limit: int) -> list[SubjectClash]:
        where = "WHERE id > :after" if after is not None else ""
        rows = await self.session.execute(
            text(f"SELECT id, kind, subject_key, scope, kept, members, found_at FROM subject_clashes {where} "
                 "ORDER BY id LIMIT :n"), {"after": after, "n": limit})
        return [SubjectClash(r.id, r.kind, r.subject_key, dict(r.scope), r.kept, list(r.members), r.found_at)
                for r in rows]

    # -----------------------------------------------------------------------------------------
    # Journal
    # -----------------------------------------------------------------------------------------

    async def insert_entries(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        await _copy(self.session, "journal_entries", _ENTRY_INSERT_COLUMNS, [
            (e.seq, e.kind, e.application_id, e.event_id, json_text([p.to_canonical() for p in e.postings]),
             e.prev_hash, e.hash, e.recorded_for)
            for e in entries
        ])

    async def journal_page(self, after: int, limit: int) -> list[JournalEntry]:
        rows = await self.session.execute(
            text(f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": limit},
        )
        return [_entry(r) for r in rows]

    # -----------------------------------------------------------------------------------------
    # Verify (services.ledger.audit): the journal's rows and the pool rows as stored, and verify's
    # own checkpoints
    # -----------------------------------------------------------------------------------------

    async def journal_rows(self, after: int, limit: int) -> Sequence[Sequence[Any]]:
        """Journal rows after seq `after`, at most `limit`, in seq order, as the driver reads them:
        (seq, kind, application_id, event_id, postings as JSON text, prev_hash, hash, recorded_for),
        for JournalAudit.feed_rows. Straight from asyncpg (a prepared statement it caches), in the
        session's transaction: at 10^6 entries, SQLAlchemy's rows and JournalEntry objects were
        most of verify's time."""
        connection = await self.session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is None:
            raise RuntimeError("the session's connection is closed")
        rows: Sequence[Sequence[Any]] = await driver.fetch(_JOURNAL_ROWS, after, limit)
        return rows

    async def pool_rows_page(self, after: str | None, limit: int) -> list[PoolRow]:
        """Pool rows in account order, after `after`, at most `limit` (keyset on the primary key)."""
        rows = await self.session.execute(
            text("SELECT account, cap_fen, committed_fen, cap_journaled FROM pools "
                 "WHERE (CAST(:after AS text) IS NULL OR account > :after) ORDER BY account LIMIT :n"),
            {"after": after, "n": limit},
        )
        return [PoolRow(r.account, r.cap_fen, r.committed_fen, r.cap_journaled) for r in rows]

    async def checkpoints(self) -> list[CheckpointRef]:
        rows = await self.session.execute(text("SELECT id, seq, hash FROM verify_checkpoints ORDER BY seq, id"))
        return [CheckpointRef(r.id, r.seq, r.hash) for r in rows]

    async def entry_hashes(self, seqs: Sequence[int]) -> dict[int, str]:
        if not seqs:
            return {}
        rows = await self.session.execute(
            text("SELECT seq, hash FROM journal_entries WHERE seq = ANY(CAST(:s AS bigint[]))"), {"s": list(seqs)})
        return {r.seq: r.hash for r in rows}

    async def first_missing_up_to(self, seq: int) -> int | None:
        """The first seq in 1..`seq` with no entry, or None (index-only passes, no entry read).

        seq is the primary key: `seq` distinct values up to `seq`, the least of them 1, are all of
        1..`seq`, so a count says whether one is missing (a third of the time of numbering the
        rows); only then is each numbered to find the first gap (a stray seq below 1 shows as 1)."""
        counted = (await self.session.execute(
            text("SELECT count(*) AS n, (SELECT min(seq) FROM journal_entries) AS low FROM journal_entries "
                 "WHERE seq <= :s"), {"s": seq})).one()
        if counted.n == seq and (seq == 0 or counted.low == 1):
            return None
        missing: int | None = await self.session.scalar(
            text("SELECT rn FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM journal_entries "
                 "WHERE seq <= :s) t WHERE seq <> rn ORDER BY rn LIMIT 1"), {"s": seq})
        if missing is None:  # 1..n present, the rest up to `seq` gone: the first after them
            missing = int(counted.n) + 1
        return missing

    async def checkpoint_totals(self, checkpoint_id: int) -> dict[str, Any]:
        totals = await self.session.scalar(text("SELECT totals FROM verify_checkpoints WHERE id = :i"),
                                           {"i": checkpoint_id})
        return dict(totals or {})

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.session.execute(
            text("INSERT INTO verify_checkpoints (seq, hash, totals, from_genesis) VALUES (:s, :h, CAST(:t AS jsonb), :f)"),
            {"s": checkpoint.seq, "h": checkpoint.hash, "t": json_text(checkpoint.totals), "f": checkpoint.from_genesis},
        )


# ---------------------------------------------------------------------------------------------
# Rows to domain objects
# ---------------------------------------------------------------------------------------------

AWARD_COLUMNS = (
    "a.application_id, a.program, a.beneficiary, a.year, a.subject, a.overlap_applicant, a.overlap_subject, "
    "a.overlap_milestone, a.amount_fen, a.draws, a.top_up_of, a.journal_seq, a.revoked, a.overlap_key, a.review"
)
_AWARD_INSERT_COLUMNS = ("application_id", "program", "beneficiary", "year", "subject", "overlap_applicant",
                         "overlap_subject", "overlap_milestone", "amount_fen", "draws", "top_up_of", "journal_seq",
                         "overlap_key", "review")
_DECISION_COLUMNS = ("application_id", "assessed_event_id", "decided_event_id", "program", "beneficiary", "year",
                     "status", "entitlement_fen", "awarded_fen", "correlation_id", "recorded_for", "data",
                     "overlap_applicant", "overlap_key", "overlap_milestone", "pool_accounts", "review_basis",
                     "call_id")
# What each pool holds for review: the pending awards' draws (an award draws its amount on each pool).
_HELD_BY_POOL = ("SELECT x->>'account' AS account, sum(a.amount_fen)::bigint AS held_fen FROM awards a "
                 "CROSS JOIN jsonb_array_elements(a.draws) AS x WHERE a.review = 'pending' AND NOT a.revoked "
                 "GROUP BY 1")
_ENTRY_INSERT_COLUMNS = ("seq", "kind", "application_id", "event_id", "postings", "prev_hash", "hash",
                         "recorded_for")
# The postings as JSON text, parsed by orjson (journal.domain.stored_postings, JournalAudit.feed_rows):
# a third of verify's time went to the driver's json.loads.
_ENTRY_COLUMNS = "seq, kind, application_id, event_id, postings::text AS postings, prev_hash, hash, recorded_for"
_JOURNAL_ROWS = f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE seq > $1 ORDER BY seq LIMIT $2"


def _chain_of(row: DecisionRow) -> tuple[str | None, str | None, str | None, list[str] | None]:
    if row.overlap is None:
        return None, None, None, None
    return row.overlap.applicant, row.overlap.subject, row.overlap.milestone, [pool_account(k) for k in row.pools]


def award_of(row: Any) -> Award:
    # A chain the subject-key migration left apart (a clash) has no key: it is its own chain, as written.
    return Award(
        application_id=row.application_id,
        program=row.program,
        beneficiary=row.beneficiary,
        overlap=OverlapKey(row.overlap_applicant, row.overlap_key if row.overlap_key is not None
                           else row.overlap_subject, row.overlap_milestone),
        amount_fen=row.amount_fen,
        draws=stored_draws(row.draws),
        top_up_of=row.top_up_of,
        review=row.review,
    )


def _draws_stored(draws: Iterable[Draw]) -> list[dict[str, Any]]:
    return [{"account": pool_account(k), "amount_fen": amount} for k, amount in draws]


def stored_draws(stored: Iterable[dict[str, Any]]) -> tuple[Draw, ...]:
    """An award's draws as its row keeps them: `amount_fen` (units last); rows written before the
    rename say `amount`, in fen all the same."""
    return tuple(
        (parse_pool_account(d["account"]), int(d["amount_fen"] if "amount_fen" in d else d["amount"])) for d in stored
    )


def award_row_of(row: Any) -> AwardRow:
    return AwardRow(award_of(row), row.year, row.subject, row.journal_seq, row.revoked, row.overlap_subject,
                    in_chain=row.overlap_key is not None)


def _entry(row: Any) -> JournalEntry:
    return entry_of_row(row.seq, row.kind, row.application_id, row.event_id, row.postings, row.prev_hash, row.hash,
                        row.recorded_for)
