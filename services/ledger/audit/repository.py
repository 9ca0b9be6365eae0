"""Verify's reads and its one write (a checkpoint), on the ledger's tables. The journal itself is
read a page at a time through SqlLedgerRepository.journal_page (keyset on seq)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from services.ledger.audit.domain import Checkpoint, CheckpointRef, PoolRow
from services.ledger.repository import SqlLedgerRepository, json_text


class SqlAuditRepository(SqlLedgerRepository):
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

    async def checkpoint_totals(self, checkpoint_id: int) -> dict[str, Any]:
        totals = await self.session.scalar(text("SELECT totals FROM verify_checkpoints WHERE id = :i"),
                                           {"i": checkpoint_id})
        return dict(totals or {})

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.session.execute(
            text("INSERT INTO verify_checkpoints (seq, hash, totals, from_genesis) VALUES (:s, :h, CAST(:t AS jsonb), :f)"),
            {"s": checkpoint.seq, "h": checkpoint.hash, "t": json_text(checkpoint.totals), "f": checkpoint.from_genesis},
        )
