"""What the policy's administration does: publish catalog versions, open and close calls, list
both. Every write is one unit of work with its event; what is refused leaves nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from services.eligibility.handlers import SOURCE, catalog_of
from services.eligibility.policy import domain
from services.eligibility.policy.repository import OverlappingCall, PolicyRepository
from shared.contracts.events import new_typed_event
from shared.kernel.cursors import next_page, page_after, parse_seq
from shared.kernel.errors import FieldProblem, NotFound, ValidationFailed
from shared.policy.calls import CallTerms, call_problems
from shared.policy.catalog import catalog_version_of, load_catalog
from shared.policy.catalog_document import document_problems

T = TypeVar("T")


def _refused(detail: str, problems: Sequence[tuple[str, str]]) -> ValidationFailed:
    return ValidationFailed(detail, errors=[FieldProblem(field, message) for field, message in problems])


# --- catalog versions -----------------------------------------------------------------------


async def publish_catalog(
    repo: PolicyRepository, document: dict[str, Any], *, note: str | None, published_by: Mapping[str, str],
    correlation: str | None = None,
) -> tuple[str, bool]:
    """Publish a catalog document: its version, and whether it is new (False: published before,
    nothing written). A document that breaks the schema is a 422 naming each bad path."""
    if problems := domain.unstorable_values(document) or document_problems(document):
        raise _refused("the catalog document is invalid", problems)
    version = catalog_version_of(document)
    row = await repo.publish(version, document, note, dict(published_by))
    if row is None:
        return version, False
    event = new_typed_event(domain.catalog_published(row, document, note, published_by), source=SOURCE,
                            subject=version, correlation_id=correlation)
    await repo.add_events([(event, version)])  # keyed by its version (CONTRACT.md, "Events")
    return version, True


async def publish_shipped_catalog(repo: PolicyRepository) -> tuple[str, bool]:
    """The catalog shipped with the code, published unless it is already (every start calls this)."""
    return await publish_catalog(repo, dict(load_catalog().raw), note=domain.SHIPPED_NOTE,
                                 published_by=domain.SYSTEM)


async def latest_catalog(repo: PolicyRepository) -> dict[str, Any]:
    row = await repo.latest()
    if row is None:
        raise NotFound("no catalog version is published yet")
    return domain.latest_catalog(row)


async def catalog_document(repo: PolicyRepository, version: str) -> dict[str, Any]:
    row = await repo.version(version)
    if row is None:
        raise NotFound(f"no catalog version {version}")
    document: dict[str, Any] = row["document"]
    return document


def _page(rows: Sequence[Mapping[str, Any]], limit: int, tag: str,
          view: Callable[[Mapping[str, Any]], T]) -> tuple[list[T], str | None]:
    """A page of `limit` rows (`rows` holds one more when there is a next page), and its cursor."""
    page, next_cursor = next_page(rows, limit, tag, lambda row: row["seq"])
    return [view(row) for row in page], next_cursor


async def list_versions(repo: PolicyRepository, *, cursor: str | None,
                        limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the versions, newest first, and the next page's cursor."""
    rows = await repo.versions_page(page_after(cursor, domain.VERSIONS_CURSOR, parse_seq), limit + 1)
    return _page(rows, limit, domain.VERSIONS_CURSOR, domain.version_listing)


# --- calls ----------------------------------------------------------------------------------


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:20]


async def open_call(
    repo: PolicyRepository, *, program: str, year: int, title: str, opens_at: datetime, closes_at: datetime,
    event_from: date, event_to: date, catalog_version: str | None, budget_fen: int | None,
    opened_by: Mapping[str, str], correlation: str | None = None,
) -> dict[str, Any]:
    """Open a call under `catalog_version` (default: the latest); 422 naming each field the
    catalog refuses, an unknown version, or a call for the same program and year it overlaps."""
    version = catalog_version or await repo.latest_version()
    catalog = None if version is None else await catalog_of(repo, version)
    if version is None or catalog is None:
        raise _refused("the call is invalid", [("catalog_version", f"no catalog version {version} is published")])
    terms = CallTerms(id=new_call_id(), program=program, year=year, opens_at=opens_at, closes_at=closes_at,
                      event_from=event_from, event_to=event_to, catalog_version=version, budget_fen=budget_fen)
    problems = call_problems(terms, catalog)
    if closes_at > opens_at and (other := await repo.overlapping_call(terms)):
        problems.append(("opens_at", f"overlaps call {other} for {program} {year}"))
    if problems:
        raise _refused("the call is invalid", problems)
    try:
        row = await repo.open_call(terms, title, dict(opened_by))
    except OverlappingCall as exc:  # opened by another admin since the check above
        raise _refused("the call is invalid", [("opens_at", f"overlaps another call for {program} {year}")]) from exc
    event = new_typed_event(domain.call_opened(row), source=SOURCE, subject=terms.id, correlation_id=correlation)
    await repo.add_events([(event, program)])  # keyed by program (CONTRACT.md, "Events")
    return domain.call_view(row)


async def close_call(repo: PolicyRepository, call_id: str, *, closed_by: Mapping[str, str], reason: str,
                     correlation: str | None = None) -> dict[str, Any]:
    """Close a call now: it admits nothing received from this moment (its closes_at moves here
    when that is earlier). Closing a closed call again changes nothing and publishes nothing."""
    row = await repo.close_call(call_id, dict(closed_by), reason)
    if row is None:
        return await get_call(repo, call_id)
    event = new_typed_event(domain.call_closed(row), source=SOURCE, subject=call_id, correlation_id=correlation)
    await repo.add_events([(event, row["program"])])
    return domain.call_view(row)


async def get_call(repo: PolicyRepository, call_id: str) -> dict[str, Any]:
    row = await repo.call(call_id)
    if row is None:
        raise NotFound(f"no call {call_id}")
    return domain.call_view(row)


async def list_calls(
    repo: PolicyRepository, *, program: str | None, year: int | None, open_now: bool | None, cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of calls, newest first, and the next page's cursor."""
    rows = await repo.calls_page(program=program, year=year, open_now=open_now,
                                 after_seq=page_after(cursor, domain.CALLS_CURSOR, parse_seq), limit=limit + 1)
    return _page(rows, limit, domain.CALLS_CURSOR, domain.call_view)
