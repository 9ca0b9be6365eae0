"""Calls for applications (申报批次): the terms a call sets, and what the catalog alone refuses.

A call opens one program for one support year, for a while, under one catalog version, with
its own event window (inside the program's) and optionally a budget. Eligibility stores calls
and assesses under them; intake accepts applications only while one is open. These terms are
what both read; the checks that need the database (an overlapping call for the same program
and year) are eligibility's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.contracts.events import CallOpened
from shared.kernel.money import format_fen, parse_amount
from shared.policy.catalog import Catalog

CALL_BUDGET_POOL = "call-budget"
"""The pool a call's budget is (scope `call`, every applicant's: ANY_BENEFICIARY)."""


@dataclass(frozen=True)
class CallTerms:
    """A call as the engine and intake read it; times are aware, the event window inclusive."""

    id: str
    program: str
    year: int
    opens_at: datetime
    closes_at: datetime
    event_from: date
    event_to: date
    catalog_version: str
    budget_fen: int | None

    @classmethod
    def from_event(cls, opened: CallOpened) -> CallTerms:
        """The terms a `call.opened` event carries (its closing time as planned then)."""
        return cls(
            id=opened.id,
            program=opened.program,
            year=opened.year,
            opens_at=datetime.fromisoformat(opened.opens_at),
            closes_at=datetime.fromisoformat(opened.closes_at),
            event_from=date.fromisoformat(opened.event_window.from_),
            event_to=date.fromisoformat(opened.event_window.to),
            catalog_version=opened.catalog_version,
            budget_fen=None if opened.budget is None else parse_amount(opened.budget),
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CallTerms:
        """The terms of a stored call: a mapping with the columns of eligibility's `calls` table
        (id, program, year, opens_at, closes_at, event_from, event_to, catalog_version, budget_fen);
        other columns are ignored. Its closes_at is the moment of closing once it was closed."""
        return cls(
            id=row["id"],
            program=row["program"],
            year=row["year"],
            opens_at=row["opens_at"],
            closes_at=row["closes_at"],
            event_from=row["event_from"],
            event_to=row["event_to"],
            catalog_version=row["catalog_version"],
            budget_fen=row["budget_fen"],
        )

    def is_open_at(self, instant: datetime) -> bool:
        """Open from opens_at (included) to closes_at (excluded)."""
        return self.opens_at <= instant < self.closes_at

    @property
    def budget(self) -> str | None:
        """The budget as it goes on the wire ("50000000.00"), or None."""
        return None if self.budget_fen is None else format_fen(self.budget_fen)


def call_problems(terms: CallTerms, catalog: Catalog) -> list[tuple[str, str]]:
    """Why the catalog version `catalog` (the one the call pins) refuses these terms, as (field,
    message) pairs for a 422; empty when it admits them. The fields are the request's:
    program, year, event_window, opens_at, closes_at, budget, catalog_version."""
    problems: list[tuple[str, str]] = []
    if terms.catalog_version != catalog.version:
        problems.append(("catalog_version", f"the catalog given is version {catalog.version}"))
    for name, instant in (("opens_at", terms.opens_at), ("closes_at", terms.closes_at)):
        if instant.utcoffset() is None:
            problems.append((name, "must carry a UTC offset (RFC 3339)"))
    if not any(name in ("opens_at", "closes_at") for name, _ in problems) and terms.closes_at <= terms.opens_at:
        problems.append(("closes_at", "must be after opens_at"))
    if terms.budget_fen is not None and terms.budget_fen <= 0:
        problems.append(("budget", "must be more than 0.00"))
    program = catalog.programs.get(terms.program)
    if program is None:
        problems.append(("program", f"{terms.program} is not in catalog version {catalog.version}"))
        return problems
    window = program.window
    if terms.event_to < terms.event_from:
        problems.append(("event_window", "to is before from"))
    elif not window.start <= terms.event_from <= terms.event_to <= window.end:
        problems.append((
            "event_window",
            f"{terms.event_from.isoformat()}..{terms.event_to.isoformat()} is not inside {program.code}'s "
            f"event window {window.start.isoformat()}..{window.end.isoformat()} ({window.citation})",
        ))
    if not window.first_year <= terms.year <= window.last_year:
        problems.append((
            "year",
            f"{terms.year} is outside {program.code}'s support years {window.first_year}..{window.last_year} "
            f"({window.citation})",
        ))
    return problems
