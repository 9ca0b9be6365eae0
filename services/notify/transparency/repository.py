"""Every SQL statement of the transparency log: the append (under a transaction-scoped advisory
lock), the stored complete subtrees a root or proof is folded from, the entries, and the
announcement rows an entry is made of.

The service role may only INSERT and SELECT the log's tables, so nothing here updates or
deletes. Appends serialize on `pg_advisory_xact_lock` rather than a row lock on a head row:
the lock needs no UPDATE privilege on anything, and it is released with the transaction that
appended, so indices are dense (0..n-1) and the size is max(index) + 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from sqlalchemy import Row, text

from services.notify.transparency.domain import Change, Entry, Node, StoredNode
from shared.db.repository import Repository

# Any fixed 64-bit number: the lock's name. "GLTLOG01" in ASCII.
APPEND_LOCK = 0x474C544C4F473031


class TransparencyRepository(Protocol):
    async def lock_for_append(self) -> None: ...

    async def size(self) -> int: ...

    async def logged_events(self, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]: ...

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]: ...

    async def insert(self, first_index: int, entries: Sequence[Entry], leaf_hashes: Sequence[bytes],
                     nodes: Sequence[StoredNode]) -> None: ...

    async def changed_announcements(self, changes: Sequence[Change]) -> list[Row[Any]]: ...

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...


_SIZE = text("SELECT coalesce(max(index) + 1, 0) FROM transparency_leaves")

_LOGGED = text("SELECT event_id FROM transparency_leaves WHERE event_id = ANY(CAST(:ids AS uuid[]))")

# Level 0 is the leaves' own hashes; the levels above are transparency_nodes.
_NODES = text(
    "SELECT 0 AS level, index, leaf_hash AS hash FROM transparency_leaves WHERE index = ANY(CAST(:leaves AS bigint[])) "
    "UNION ALL "
    "SELECT n.level, n.index, n.hash FROM transparency_nodes n "
    "JOIN unnest(CAST(:levels AS int[]), CAST(:indices AS bigint[])) AS u(l, i) ON n.level = u.l AND n.index = u.i"
)

_INSERT_LEAVES = text(
    "INSERT INTO transparency_leaves (index, entry, leaf_hash, announcement_id, kind, event_id) "
    "SELECT i, e, h, a, k, ev FROM unnest(CAST(:indices AS bigint[]), CAST(:entries AS bytea[]), "
    "CAST(:hashes AS bytea[]), CAST(:announcements AS text[]), CAST(:kinds AS text[]), CAST(:events AS uuid[])) "
    "AS u(i, e, h, a, k, ev)"
)

_INSERT_NODES = text(
    "INSERT INTO transparency_nodes (level, index, hash) "
    "SELECT * FROM unnest(CAST(:levels AS int[]), CAST(:indices AS bigint[]), CAST(:hashes AS bytea[]))"
)

# The row as it stands in this transaction (just published, withdrawn or finalized), with the
# event of each change; a change whose event column is still null did not happen.
_CHANGED = text(
    "SELECT a.id, a.application_id, a.applicant_name, a.program, a.year, a.subject, a.amount_fen, "
    "a.published_at, a.notice_ends_at, a.finalized_at, a.objections_open, a.withdrawn_at, "
    "a.published_event_id, a.withdrawn_event_id, a.finalized_event_id "
    "FROM announcements a WHERE a.application_id = ANY(CAST(:apps AS text[]))"
)

_ENTRIES = text("SELECT index, entry FROM transparency_leaves WHERE index >= :start AND index < :end ORDER BY index")


class SqlTransparencyRepository(Repository):
    async def lock_for_append(self) -> None:
        """Held to the end of the transaction. Taken after the announcement changes it logs, so
        a transaction never waits for the log while others wait for its announcement rows."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK})

    async def size(self) -> int:
        return int((await self.session.execute(_SIZE)).scalar_one())

    async def logged_events(self, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not event_ids:
            return set()
        rows = await self.session.execute(_LOGGED, {"ids": [str(e) for e in event_ids]})
        return {row[0] for row in rows}

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        leaves = [index for level, index in wanted if level == 0]
        inner = [(level, index) for level, index in wanted if level > 0]
        rows = await self.session.execute(
            _NODES,
            {"leaves": leaves, "levels": [level for level, _ in inner], "indices": [index for _, index in inner]},
        )
        return {(int(level), int(index)): bytes(h) for level, index, h in rows}

    async def insert(self, first_index: int, entries: Sequence[Entry], leaf_hashes: Sequence[bytes],
                     nodes: Sequence[StoredNode]) -> None:
        if not entries:
            return
        await self.session.execute(
            _INSERT_LEAVES,
            {
                "indices": list(range(first_index, first_index + len(entries))),
                "entries": [e.entry for e in entries],
                "hashes": list(leaf_hashes),
                "announcements": [e.announcement_id for e in entries],
                "kinds": [e.kind for e in entries],
                "events": [str(e.event_id) for e in entries],
            },
        )
        if nodes:
            await self.session.execute(
                _INSERT_NODES,
                {"levels": [n.level for n in nodes], "indices": [n.index for n in nodes],
                 "hashes": [n.hash for n in nodes]},
            )

    async def changed_announcements(self, changes: Sequence[Change]) -> list[Row[Any]]:
        apps = sorted({c.application_id for c in changes})
        if not apps:
            return []
        return list((await self.session.execute(_CHANGED, {"apps": apps})).all())

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries [start, end)."""
        rows = await self.session.execute(_ENTRIES, {"start": start, "end": end})
        return [(int(index), bytes(entry)) for index, entry in rows]
