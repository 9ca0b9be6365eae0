"""What verify does: stream the journal a page at a time through JournalAudit (the chain, and one
running cap and committed per pool), hold every pool row to what the journal derived, and say
where a later run may start.

A full run starts at the genesis and re-reads everything. An incremental run starts at the latest
verify checkpoint whose hash is still the journal's at its seq, with that checkpoint's totals, and
reads only the entries after it; it still holds every pool row (cap and committed) to the totals,
still checks the chain from the checkpoint to the stored head, and still checks every checkpoint's
hash against the journal (a checkpoint that no longer matches: history was rewritten after it was
verified), and counts the entries up to the checkpoint (a deleted one is named). What it does not
re-read is those entries: an edit there that leaves the stored hashes and the pools as they were
(a changed amount with the old hash kept) is found only by a full run. Run one now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.ledger.audit.domain import (
    GENESIS,
    VERIFY_PAGE,
    Checkpoint,
    CheckpointRef,
    PoolRow,
    pool_mismatch,
    report,
    split_totals,
    starting_point,
)
from services.ledger.audit.payments import payment_problem, with_payment_problem
from services.ledger.journal.domain import JournalAudit, JournalHead


class AuditRepository(Protocol):
    async def head(self) -> JournalHead: ...

    async def journal_rows(self, after: int, limit: int) -> Sequence[Sequence[Any]]: ...

    async def pool_rows_page(self, after: str | None, limit: int) -> list[PoolRow]: ...

    async def checkpoints(self) -> list[CheckpointRef]: ...

    async def entry_hashes(self, seqs: list[int]) -> dict[int, str]: ...

    async def checkpoint_totals(self, checkpoint_id: int) -> dict[str, Any]: ...

    async def first_missing_up_to(self, seq: int) -> int | None: ...


@dataclass(frozen=True)
class Verification:
    report: dict[str, Any]
    checkpoint: Checkpoint | None  # what to record when the ledger was found intact
    latest_checkpoint_seq: int | None  # the newest checkpoint's seq before this run (None: none yet)

    @property
    def worth_recording(self) -> bool:
        """Intact, and further than any checkpoint already recorded."""
        return self.checkpoint is not None and (self.latest_checkpoint_seq is None
                                                or self.checkpoint.seq > self.latest_checkpoint_seq)


async def run_verify(repo: AuditRepository, *, incremental: bool = False,
                     page_size: int = VERIFY_PAGE) -> Verification:
    """Verify the ledger in the repository's snapshot (see the module docs)."""
    stored_head = await repo.head()
    checkpoints = await repo.checkpoints()
    hashes = await repo.entry_hashes(sorted({c.seq for c in checkpoints if c.seq > 0}))
    start, broken = starting_point(checkpoints, hashes)
    if incremental and start.id != 0:
        caps, committed = split_totals(await repo.checkpoint_totals(start.id))
    else:
        start, caps, committed = GENESIS, {}, {}
    audit = JournalAudit(JournalHead(start.seq, start.hash), caps=caps, committed=committed,
                         checkpoints={c.seq: c.hash for c in checkpoints if c.seq > start.seq})
    if start.seq > 0:  # the entries up to the checkpoint are not read: only counted
        missing = await repo.first_missing_up_to(start.seq)
        if missing is not None:
            audit.fail(missing, f"entry {missing}, before the checkpoint at {start.seq}, is missing")
    await _feed_journal(repo, audit, start.seq, page_size)
    result = audit.finish(stored_head.hash)

    mismatches: list[dict[str, Any]] = []
    seen: set[str] = set()
    last: str | None = None
    while True:
        rows = await repo.pool_rows_page(last, page_size)
        for row in rows:
            seen.add(row.account)
            line = pool_mismatch(row.account, row, audit.caps.get(row.account), audit.committed.get(row.account, 0))
            if line is not None:
                mismatches.append(line)
        if len(rows) < page_size:
            break
        last = rows[-1].account
    for account in (set(audit.caps) | {a for a, c in audit.committed.items() if c != 0}) - seen:
        line = pool_mismatch(account, None, audit.caps.get(account), audit.committed.get(account, 0))
        if line is not None:
            mismatches.append(line)

    out = report(result, mismatches, broken, start=JournalHead(start.seq, start.hash) if incremental else None)
    payments = await payment_problem(repo, page_size)  # every payment order against the journal (audit.payments)
    if payments is not None:
        out = with_payment_problem(out, payments)
    intact = bool(out["ok"])
    return Verification(out, Checkpoint.of(audit, result, from_genesis=start.seq == 0) if intact else None,
                        max((c.seq for c in checkpoints), default=None))


async def _feed_journal(repo: AuditRepository, audit: JournalAudit, after: int, page_size: int) -> None:
    """Every entry after seq `after` through the audit, a page at a time. The next page's query is
    sent before this one is checked, so the database reads and sends it while the hashing runs."""
    pending = asyncio.ensure_future(repo.journal_rows(after, page_size))
    try:
        while True:
            page = await pending
            if len(page) == page_size:
                pending = asyncio.ensure_future(repo.journal_rows(page[-1][0], page_size))
                await asyncio.sleep(0)  # let it send the query
            audit.feed_rows(page)
            if len(page) < page_size:
                break
    finally:
        if not pending.done():  # a failure while checking: the query is still the connection's
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


async def verify_ledger(repo: AuditRepository, *, incremental: bool = False,
                        page_size: int = VERIFY_PAGE) -> dict[str, Any]:
    """The verify report alone (no checkpoint recorded)."""
    return (await run_verify(repo, incremental=incremental, page_size=page_size)).report
