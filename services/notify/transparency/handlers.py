"""What the transparency log does: append the entries of announcement changes in the transaction
that made them, and answer checkpoints, entries and proofs from stored complete subtrees (I/O
edge over domain.py)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Row

from services.notify.domain import public_announcement
from services.notify.transparency import domain
from services.notify.transparency.domain import Change, Checkpoint, Entry, Signer
from services.notify.transparency.repository import TransparencyRepository
from shared.config.settings import Settings
from shared.kernel.errors import FieldProblem, ValidationFailed

ENTRIES_MAX = 1000


# --- append --------------------------------------------------------------------------------------


def _public(row: Row[Any]) -> dict[str, Any]:
    return public_announcement(
        announcement_id=row.id, applicant_name=row.applicant_name, program=row.program, year=row.year,
        subject=row.subject, amount_fen=row.amount_fen, published_at=row.published_at,
        notice_ends_at=row.notice_ends_at, finalized_at=row.finalized_at, objections_open=row.objections_open,
    )


def entry_for(change: Change, row: Row[Any]) -> Entry | None:
    """The entry of a change as the announcement's row records it; None when the row says the
    change did not happen (a revocation that found the notice already down, say)."""
    if change.kind == "published":
        return domain.announcement_entry("published", row.published_event_id, _public(row))
    if change.kind == "withdrawn" and row.withdrawn_event_id is not None and row.withdrawn_at is not None:
        return domain.announcement_entry("withdrawn", row.withdrawn_event_id, _public(row),
                                         at=row.withdrawn_at.isoformat())
    if change.kind == "finalized" and row.finalized_event_id is not None and row.finalized_at is not None:
        return domain.announcement_entry("finalized", row.finalized_event_id, _public(row),
                                         at=row.finalized_at.isoformat())
    return None


async def append_changes(repo: TransparencyRepository, changes: Sequence[Change]) -> list[Entry]:
    """Append the entries of `changes` (in order; one per event, however often it is logged) to
    the log, in the caller's transaction: the leaves and the complete subtrees they complete,
    at most about log n nodes. Returns the entries appended now."""
    if not changes:
        return []
    rows = {row.application_id: row for row in await repo.changed_announcements(changes)}
    entries = [e for c in changes if c.application_id in rows
               and (e := entry_for(c, rows[c.application_id])) is not None]
    return await append_entries(repo, entries)


async def append_entries(repo: TransparencyRepository, entries: Sequence[Entry]) -> list[Entry]:
    """Append entries not logged yet, in order, in the caller's transaction: their leaves and the
    complete subtrees they complete. Reads O(log n) stored hashes (the peaks), never the log."""
    if not entries:
        return []
    await repo.lock_for_append()
    fresh = domain.unlogged(entries, await repo.logged_events({e.event_id for e in entries}))
    if not fresh:
        return []
    size = await repo.size()
    peak_nodes = domain.peaks(size)
    stored = await repo.nodes(peak_nodes)
    missing = [n for n in peak_nodes if n not in stored]
    if missing:
        raise domain.MissingNode(f"the log has no stored hash for subtree {missing[0]}")
    hashes = [domain.leaf_hash(e.entry) for e in fresh]
    made = domain.appended_nodes(size, [stored[n] for n in peak_nodes], hashes)
    await repo.insert(size, fresh, hashes, made)
    return fresh


# --- the signing key -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _signer(key: str | None, webhook_signing_key: str, deployment: str) -> Signer:
    seed = domain.seed_from_setting(key) if key else domain.dev_seed(webhook_signing_key)
    return Signer.from_seed(domain.origin_for(deployment), seed)


def signer_for(settings: Settings) -> Signer:
    """The log's key, named after its origin. Production refuses an unset key (settings); a dev
    or test stack without one signs with a key derived from its webhook signing key
    (domain.dev_seed says why)."""
    return _signer(settings.transparency_key, settings.webhook_signing_key, settings.deployment)


# --- reads ---------------------------------------------------------------------------------------


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[FieldProblem(field, message)])


async def current_checkpoint(repo: TransparencyRepository, signer: Signer) -> str:
    """The signed checkpoint of the log as it stands (one snapshot: size and root agree)."""
    size = await repo.size()
    stored = await repo.nodes(domain.peaks(size))
    return domain.signed_checkpoint(signer, Checkpoint(signer.name, size, domain.root(size, stored)))


async def entries(repo: TransparencyRepository, start: int, end: int) -> list[dict[str, Any]]:
    """Entries `start` to `end` inclusive (RFC 9162's get-entries), at most ENTRIES_MAX of
    them and none past the log's end."""
    if end < start:
        raise _refuse("end", f"must not be less than start ({start})")
    size = await repo.size()
    if start >= size:
        raise _refuse("start", f"must be less than the log's size ({size})")
    last = min(end, size - 1, start + ENTRIES_MAX - 1)
    return [{"index": i, "entry": base64.b64encode(e).decode()} for i, e in await repo.entries(start, last + 1)]


async def _within(repo: TransparencyRepository, field: str, size: int) -> None:
    current = await repo.size()
    if size > current:
        raise _refuse(field, f"must not exceed the log's size ({current})")


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


async def inclusion_proof(repo: TransparencyRepository, index: int, size: int) -> dict[str, Any]:
    if index >= size:
        raise _refuse("index", f"must be less than size ({size})")
    await _within(repo, "size", size)
    ranges = domain.inclusion_ranges(index, size)
    stored = await repo.nodes(domain.nodes_for(ranges))
    return {"index": index, "size": size, "hashes": _b64(domain.assemble(ranges, stored))}


async def consistency_proof(repo: TransparencyRepository, first: int, second: int) -> dict[str, Any]:
    if first > second:
        raise _refuse("from", f"must not exceed to ({second})")
    await _within(repo, "to", second)
    ranges = domain.consistency_ranges(first, second)
    stored = await repo.nodes(domain.nodes_for(ranges))
    return {"from": first, "to": second, "hashes": _b64(domain.assemble(ranges, stored))}
