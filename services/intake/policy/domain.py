"""The replicated policy as values: the calls and compiled catalogs intake knows, which call
admits an application, and the programs listing. Pure: the moment is always given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.kernel.errors import FieldProblem
from shared.policy.calls import CallTerms
from shared.policy.catalog import Catalog
from shared.policy.validation import ApplicationInput, validate_application


@dataclass(frozen=True)
class KnownCall:
    """A replicated call: the terms the engine reads, and its title for the listing."""

    terms: CallTerms
    title: str

    def to_wire(self) -> dict[str, Any]:
        """As GET /v1/programs lists it (the fields of call.opened that a partner needs)."""
        t = self.terms
        return {
            "id": t.id,
            "program": t.program,
            "year": t.year,
            "title": self.title,
            "opens_at": t.opens_at.isoformat(),
            "closes_at": t.closes_at.isoformat(),
            "event_window": {"from": t.event_from.isoformat(), "to": t.event_to.isoformat()},
            "catalog_version": t.catalog_version,
            "budget": t.budget,
        }


@dataclass(frozen=True)
class PolicyView:
    """What intake knows of the policy at one moment of the replica.

    `latest` is the newest replicated catalog version (the shipped catalog until one is
    replicated): it names the programs GET /v1/programs lists, and validates the other fields
    of an application for which no call is open."""

    latest: Catalog
    catalogs: Mapping[str, Catalog] = field(default_factory=dict)  # by version
    calls: Mapping[tuple[str, int], tuple[KnownCall, ...]] = field(default_factory=dict)  # by (program, year)

    @classmethod
    def build(cls, latest: Catalog, catalogs: Mapping[str, Catalog], calls: Iterable[KnownCall]) -> PolicyView:
        by_key: dict[tuple[str, int], list[KnownCall]] = {}
        for call in calls:
            by_key.setdefault((call.terms.program, call.terms.year), []).append(call)
        ordered = {key: tuple(sorted(found, key=lambda c: (c.terms.opens_at, c.terms.id)))
                   for key, found in by_key.items()}
        return cls(latest=latest, catalogs=dict(catalogs), calls=ordered)

    def open_call(self, program: str, year: int, at: datetime) -> KnownCall | None:
        """The call open for (program, year) at `at` (opens_at <= at < closes_at), if any. Calls
        for one program and year never overlap (eligibility refuses that), so there is one at most."""
        for call in self.calls.get((program, year), ()):
            if call.terms.is_open_at(at):
                return call
        return None

    def open_calls(self, at: datetime) -> list[KnownCall]:
        """Every call open at `at`, by program, year and opening."""
        return [call for key in sorted(self.calls) for call in self.calls[key] if call.terms.is_open_at(at)]

    def programs_listing(self, at: datetime) -> dict[str, Any]:
        """GET /v1/programs: the latest version's programs, each with the calls open for it at `at`
        that intake admits applications under (their catalog version is here too)."""
        open_by_program: dict[str, list[dict[str, Any]]] = {}
        for call in self.open_calls(at):
            if call.terms.catalog_version in self.catalogs:
                open_by_program.setdefault(call.terms.program, []).append(call.to_wire())
        items = [
            {**program, "calls": open_by_program.get(program["code"], [])}
            for program in self.latest.public_listing()
        ]
        return {"catalog_version": self.latest.version, "items": items}


@dataclass(frozen=True)
class Admission:
    """What the policy says of one application body received at a moment.

    `application` is set (and `errors` empty) when it is admitted, with the `call` it is received
    under and the `catalog` that call pinned. `call` without `catalog`: the call is open but its
    catalog version has not reached intake yet (it travels on another partition): try again."""

    application: ApplicationInput | None
    errors: list[FieldProblem]
    call: KnownCall | None = None
    catalog: Catalog | None = None


def _program_and_year(body: object) -> tuple[str, int] | None:
    if not isinstance(body, dict):
        return None
    program, year = body.get("program"), body.get("year")
    if isinstance(program, str) and isinstance(year, int) and not isinstance(year, bool):
        return program, year
    return None


def admit(view: PolicyView, body: object, received: datetime) -> Admission:
    """Validate `body` against the catalog of the call open for its program and year at
    `received`; with no such call, the latest version's errors and a `year` error naming it."""
    key = _program_and_year(body)
    call = view.open_call(key[0], key[1], received) if key is not None else None
    if call is None:
        _, errors = validate_application(body, view.latest)
        if key is not None and not any(e.field in ("program", "year") for e in errors):
            errors = [*errors, FieldProblem("year", f"no open call for {key[0]} {key[1]}")]
        return Admission(None, errors)
    catalog = view.catalogs.get(call.terms.catalog_version)
    if catalog is None:
        return Admission(None, [], call)
    application, errors = validate_application(body, catalog)
    return Admission(application, errors, call, catalog)
