"""Catalog versions and calls as the API shows them and as their events carry them: pure
functions of the stored rows, so an event says exactly what was stored."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.contracts.events import CallClosed, CallOpened, CatalogPublished
from shared.kernel.money import format_fen

SYSTEM: dict[str, str] = {"id": "system"}
"""Who publishes the catalog shipped with the code, at start."""
SHIPPED_NOTE = "the catalog shipped with Grantline"

VERSIONS_CURSOR = "catalog-versions:"  # the last version's seq
CALLS_CURSOR = "calls:"  # the last call's seq


_SURROGATES = re.compile("[\ud800-\udfff]")
_INT64 = 2**63


def text_problem(text: str) -> str | None:
    """Why PostgreSQL or the wire could not carry `text` as given, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"  # PostgreSQL's text, json and jsonb refuse them
    if _SURROGATES.search(text):
        return "must be valid Unicode (a lone surrogate is not)"  # UTF-8 cannot carry them
    return None


def unstorable_values(value: object, path: str = "document") -> list[tuple[str, str]]:
    """Every value of a parsed JSON document that could not be stored, sent and read back as it
    is, by path in the API's form (`document.programs[0].window.text`): text PostgreSQL or UTF-8
    refuses, an integer beyond 64 bits, NaN or an infinity. The schema's own checks come after."""
    problems: list[tuple[str, str]] = []
    if isinstance(value, str):
        if (problem := text_problem(value)) is not None:
            problems.append((path, problem))
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            problems.append((path, "must be an integer within 64 bits"))
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append((path, "must be a finite number"))
    elif isinstance(value, dict):
        for key, item in value.items():
            if (problem := text_problem(key)) is not None:
                problems.append((path, f"key {key!r}: {problem}"))
            else:
                problems.extend(unstorable_values(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(unstorable_values(item, f"{path}[{index}]"))
    return problems


def _instant(value: datetime) -> str:
    return value.isoformat()


def version_listing(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": row["version"], "published_at": _instant(row["published_at"]),
            "published_by": row["published_by"], "note": row["note"]}


def latest_catalog(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": row["version"], "published_at": _instant(row["published_at"]), "document": row["document"]}


def call_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored call as the API shows it; `status` (scheduled, open, closed) is the row's, read
    by the database's clock."""
    closed_at = row["closed_at"]
    return {
        "id": row["id"],
        "program": row["program"],
        "year": row["year"],
        "title": row["title"],
        "status": row["status"],
        "opens_at": _instant(row["opens_at"]),
        "closes_at": _instant(row["closes_at"]),
        "event_window": {"from": row["event_from"].isoformat(), "to": row["event_to"].isoformat()},
        "catalog_version": row["catalog_version"],
        "budget": None if row["budget_fen"] is None else format_fen(row["budget_fen"]),
        "opened_by": row["opened_by"],
        "opened_at": _instant(row["opened_at"]),
        "closed_by": row["closed_by"],
        "closed_at": None if closed_at is None else _instant(closed_at),
        "close_reason": row["close_reason"],
    }


def catalog_published(row: Mapping[str, Any], document: dict[str, Any], note: str | None,
                      published_by: Mapping[str, str]) -> CatalogPublished:
    """The `catalog.published` data of a version just stored (`row`: version, published_at)."""
    data: dict[str, Any] = {"version": row["version"], "published_at": _instant(row["published_at"]),
                            "published_by": dict(published_by)}
    if note is not None:
        data["note"] = note
    data["document"] = document
    return CatalogPublished.model_validate(data)


def call_opened(row: Mapping[str, Any]) -> CallOpened:
    """The `call.opened` data of a call just stored."""
    view = call_view(row)
    data = {key: view[key] for key in ("id", "program", "year", "title", "opens_at", "closes_at", "event_window",
                                       "catalog_version")}
    if view["budget"] is not None:
        data["budget"] = view["budget"]
    data.update(opened_by=view["opened_by"], opened_at=view["opened_at"])
    return CallOpened.model_validate(data)


def call_closed(row: Mapping[str, Any]) -> CallClosed:
    """The `call.closed` data of a call just closed: it admits nothing received at or after
    `closes_at`."""
    view = call_view(row)
    return CallClosed.model_validate({"id": view["id"], "program": view["program"], "year": view["year"],
                                      "closes_at": view["closes_at"], "closed_by": view["closed_by"],
                                      "reason": view["close_reason"]})
