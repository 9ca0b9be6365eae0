"""The SQL of eligibility's policy tables: catalog versions and calls (申报批次)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import orjson
from sqlalchemy import Result, text
from sqlalchemy.exc import IntegrityError

from shared.messaging.outbox import PublishingRepository
from shared.policy.calls import CallTerms

_EXCLUSION_VIOLATION = "23P01"

# ON CONFLICT: a version is its content's address, so a document published twice (or by two
# admins at once: the second waits for the first's commit) is stored once; nothing returned
# means it was there already.
_PUBLISH = text(
    "INSERT INTO catalog_versions (version, document, note, published_by) "
    "VALUES (:version, CAST(:document AS json), :note, CAST(:published_by AS jsonb)) "
    "ON CONFLICT (version) DO NOTHING RETURNING version, published_at, seq"
)
_LATEST = text("SELECT version, published_at, document FROM catalog_versions ORDER BY seq DESC LIMIT 1")
_LATEST_VERSION = text("SELECT version FROM catalog_versions ORDER BY seq DESC LIMIT 1")
_VERSION = text("SELECT version, published_at, published_by, note, document FROM catalog_versions WHERE version = :v")
_DOCUMENTS = text("SELECT version, document FROM catalog_versions WHERE version = ANY(CAST(:versions AS text[]))")
_VERSIONS_PAGE = text(
    "SELECT version, published_at, published_by, note, seq FROM catalog_versions "
    "WHERE CAST(:after AS bigint) IS NULL OR seq < :after ORDER BY seq DESC LIMIT :limit"
)

# Every read of a call says where it stands by the database's clock, the one closing uses.
_CALL_COLUMNS = (
    "id, seq, program, year, title, opens_at, closes_at, event_from, event_to, catalog_version, budget_fen, "
    "opened_by, opened_at, closed_by, closed_at, close_reason, "
    "CASE WHEN closed_at IS NOT NULL OR now() >= closes_at THEN 'closed' WHEN now() < opens_at THEN 'scheduled' "
    "ELSE 'open' END AS status"
)
_OPEN_CALL = text(
    "INSERT INTO calls (id, program, year, title, opens_at, closes_at, event_from, event_to, catalog_version, "
    "budget_fen, opened_by) VALUES (:id, :program, :year, :title, :opens_at, :closes_at, :event_from, :event_to, "
    f":catalog_version, :budget_fen, CAST(:opened_by AS jsonb)) RETURNING {_CALL_COLUMNS}"
)
_OVERLAPPING = text(
    "SELECT id FROM calls WHERE program = :program AND year = :year "
    "AND tstzrange(opens_at, closes_at) && tstzrange(:opens_at, :closes_at) ORDER BY seq LIMIT 1"
)
# Closing moves closes_at to the moment of closing when that is earlier (and never before the
# opening: a call closed before it opened admits nothing, an empty range).
_CLOSE = text(
    "UPDATE calls SET closes_at = LEAST(closes_at, GREATEST(opens_at, now())), closed_at = now(), "
    "closed_by = CAST(:closed_by AS jsonb), close_reason = :reason "
    f"WHERE id = :id AND closed_at IS NULL RETURNING {_CALL_COLUMNS}"
)
_CALL = text(f"SELECT {_CALL_COLUMNS} FROM calls WHERE id = :id")
_CALLS = text(f"SELECT {_CALL_COLUMNS} FROM calls WHERE id = ANY(CAST(:ids AS text[]))")
_OPEN_NOW = text(
    f"SELECT {_CALL_COLUMNS} FROM calls WHERE program = :program AND year = :year "
    "AND opens_at <= now() AND now() < closes_at"
)
_CALLS_PAGE = text(
    f"SELECT {_CALL_COLUMNS} FROM calls "
    "WHERE (CAST(:program AS text) IS NULL OR program = :program) "
    "AND (CAST(:year AS integer) IS NULL OR year = :year) "
    "AND (CAST(:open AS boolean) IS NULL OR (opens_at <= now() AND now() < closes_at) = :open) "
    "AND (CAST(:after AS bigint) IS NULL OR seq < :after) "
    "ORDER BY seq DESC LIMIT :limit"
)


class OverlappingCall(Exception):
    """Another call for the same program and year is open at some moment of this one's."""


Row = dict[str, Any]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _first(result: Result[Any]) -> Row | None:
    row = result.mappings().first()
    return None if row is None else dict(row)


def _all(result: Result[Any]) -> list[Row]:
    return [dict(row) for row in result.mappings()]


class PolicyRepository(PublishingRepository):
    """Every statement on the catalog versions and calls, in the session's transaction."""

    # --- catalog versions

    async def publish(
        self, version: str, document: dict[str, Any], note: str | None, published_by: dict[str, str]
    ) -> Row | None:
        """Store a version unless it is stored already: its (version, published_at, seq) when stored now."""
        result = await self.session.execute(_PUBLISH, {
            "version": version, "document": _json(document), "note": note, "published_by": _json(published_by),
        })
        return _first(result)

    async def latest(self) -> Row | None:
        """The latest version: version, published_at, document."""
        return _first(await self.session.execute(_LATEST))

    async def latest_version(self) -> str | None:
        """The latest version's address alone (its document is compiled once per process)."""
        return await self.session.scalar(_LATEST_VERSION)

    async def version(self, version: str) -> Row | None:
        return _first(await self.session.execute(_VERSION, {"v": version}))

    async def documents(self, versions: Collection[str]) -> dict[str, dict[str, Any]]:
        """The documents of those of `versions` that are stored."""
        rows = await self.session.execute(_DOCUMENTS, {"versions": list(versions)})
        return {row.version: row.document for row in rows}

    async def versions_page(self, after_seq: int | None, limit: int) -> list[Row]:
        """Versions newest first, after the one numbered `after_seq`."""
        return _all(await self.session.execute(_VERSIONS_PAGE, {"after": after_seq, "limit": limit}))

    # --- calls

    async def overlapping_call(self, terms: CallTerms) -> str | None:
        """The first call for the same program and year open at some moment of `terms`' (no lock:
        the constraint calls_no_overlap decides between two admins opening calls at once)."""
        return await self.session.scalar(_OVERLAPPING, {
            "program": terms.program, "year": terms.year, "opens_at": terms.opens_at, "closes_at": terms.closes_at,
        })

    async def open_call(self, terms: CallTerms, title: str, opened_by: dict[str, str]) -> Row:
        """Store a call; OverlappingCall when the constraint finds one (committed meanwhile)."""
        params = {
            "id": terms.id, "program": terms.program, "year": terms.year, "title": title, "opens_at": terms.opens_at,
            "closes_at": terms.closes_at, "event_from": terms.event_from, "event_to": terms.event_to,
            "catalog_version": terms.catalog_version, "budget_fen": terms.budget_fen, "opened_by": _json(opened_by),
        }
        try:
            return _all(await self.session.execute(_OPEN_CALL, params))[0]
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) == _EXCLUSION_VIOLATION:
                raise OverlappingCall(str(exc.orig)) from exc
            raise

    async def close_call(self, call_id: str, closed_by: dict[str, str], reason: str) -> Row | None:
        """Close a call not closed yet (None when it is unknown or closed already)."""
        result = await self.session.execute(_CLOSE, {"id": call_id, "closed_by": _json(closed_by), "reason": reason})
        return _first(result)

    async def call(self, call_id: str) -> Row | None:
        return _first(await self.session.execute(_CALL, {"id": call_id}))

    async def calls(self, ids: Iterable[str]) -> dict[str, Row]:
        rows = _all(await self.session.execute(_CALLS, {"ids": list(ids)}))
        return {row["id"]: row for row in rows}

    async def open_call_for(self, program: str, year: int) -> Row | None:
        """The call for `program` and `year` open now, if any (at most one: calls do not overlap)."""
        return _first(await self.session.execute(_OPEN_NOW, {"program": program, "year": year}))

    async def calls_page(
        self, *, program: str | None, year: int | None, open_now: bool | None, after_seq: int | None, limit: int
    ) -> list[Row]:
        """Calls newest first (by creation), after the one numbered `after_seq`."""
        params = {"program": program, "year": year, "open": open_now, "after": after_seq, "limit": limit}
        return _all(await self.session.execute(_CALLS_PAGE, params))
