"""The program catalog: versioned data with a citation on every rule.

`catalog.json` is the source. `catalog_document` validates it strictly when it is loaded (an
unknown, misplaced or missing key is a CatalogError naming its path, never a silent default);
this module compiles the validated document into frozen dataclasses with amounts already in
integer fen and dates already parsed, so the engine does no parsing per assessment. They stay
dataclasses, not the pydantic models themselves, because assessment is the hot path and an
attribute read on a pydantic model costs several times one on a dataclass.

The catalog's version is "sha256:" + the hex digest of its canonical JSON encoding, so an
assessment can record exactly which rules it applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.policy.catalog_document import (
    MILESTONE_PLACEHOLDER,
    SUBJECT_FORMATS,
    AnyFormulaDocument,
    CatalogDocument,
    CatalogError,
    ConditionDocument,
    FactDocument,
    FormulaSwitchDocument,
    ProgramDocument,
    RuleDocument,
    SubjectFormat,
    validate_document,
)

CATALOG_PATH = Path(__file__).with_name("catalog.json")


# --------------------------------------------------------------------------- compiled form


@dataclass(frozen=True)
class Condition:
    """`fact == equals`; used for conditionally required facts and conditional rules."""

    fact: str
    equals: str | bool

    def holds(self, facts: Mapping[str, Any]) -> bool:
        value = facts.get(self.fact)
        return type(value) is type(self.equals) and value == self.equals

    def to_wire(self) -> dict[str, Any]:
        return {"fact": self.fact, "equals": self.equals}


@dataclass(frozen=True)
class FactSpec:
    name: str
    type: str
    required: bool
    required_when: Condition | None
    values: tuple[str, ...]
    min: int | None
    description: str

    def is_required(self, facts: Mapping[str, Any]) -> bool:
        return self.required or (self.required_when is not None and self.required_when.holds(facts))


@dataclass(frozen=True)
class RequestedSpec:
    required: bool
    required_when: Condition | None

    def is_required(self, facts: Mapping[str, Any]) -> bool:
        return self.required or (self.required_when is not None and self.required_when.holds(facts))


@dataclass(frozen=True)
class RuleSpec:
    rule: str
    kind: str  # required_true | required_false | threshold | registered_in_shanghai
    fact: str
    citation: str
    text: str
    when: Condition | None = None
    min_fen: int | None = None  # threshold only
    inclusive: bool = True  # threshold only: 以上 includes the bound


@dataclass(frozen=True)
class Formula:
    """One way of computing an award, with its per-award maximum."""

    kind: str  # rate | per_unit | requested | patents
    maximum_fen: int | None  # None: no per-award maximum (an annual cap is a pool, not a maximum)
    citation: str
    text: str
    rate_bp: int | None = None  # rate, patents
    base_fact: str | None = None  # rate
    unit_fen: int | None = None  # per_unit
    count_fact: str | None = None  # per_unit
    list_fact: str | None = None  # patents
    per_item_max_fen: int | None = None  # patents
    max_items: int | None = None  # patents


@dataclass(frozen=True)
class FormulaSwitch:
    """The formula depends on an enum or bool fact (phase, stage, item, major_project)."""

    fact: str
    cases: Mapping[str, Formula]

    def select(self, facts: Mapping[str, Any]) -> Formula:
        return self.cases[case_key(facts[self.fact])]


def case_key(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    scope: str  # subject | beneficiary_year | project (shared.contracts.events.PoolClaim)
    cap_fen: int
    citation: str
    text: str


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    first_year: int
    last_year: int
    citation: str
    text: str


@dataclass(frozen=True)
class KindsSpec:
    allowed: frozenset[str]
    citation: str
    text: str


@dataclass(frozen=True)
class SubjectSpec:
    """The form a program's subject must have (a registry number), with the paragraph saying why."""

    format: SubjectFormat
    citation: str
    text: str


@dataclass(frozen=True)
class Program:
    code: str
    name_zh: str
    name_en: str
    source: str
    citation: str
    review: str  # required (核定 by a reviewer before anything is final) | auto (the formula paid in full)
    window: Window
    applicant_kinds: KindsSpec
    subject: SubjectSpec | None
    facts: dict[str, FactSpec]
    requested: RequestedSpec
    rules: tuple[RuleSpec, ...]
    formula: Formula | FormulaSwitch
    pools: tuple[PoolSpec, ...]
    milestone: str
    milestone_facts: tuple[str, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    def formula_for(self, facts: Mapping[str, Any]) -> Formula:
        if isinstance(self.formula, FormulaSwitch):
            return self.formula.select(facts)
        return self.formula

    def milestone_for(self, facts: Mapping[str, Any]) -> str:
        if not self.milestone_facts:
            return self.milestone
        return MILESTONE_PLACEHOLDER.sub(lambda m: case_key(facts[m.group(1)]), self.milestone)


@dataclass(frozen=True)
class Catalog:
    version: str
    programs: dict[str, Program]
    registered_citation: str
    registered_text: str
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    def public_listing(self) -> list[dict[str, Any]]:
        """What `GET /v1/programs` shows: everything a partner needs to build an application."""
        return [_listing(p, self) for p in self.programs.values()]


def _listing(p: Program, catalog: Catalog) -> dict[str, Any]:
    raw = p.raw
    facts = []
    for name, spec in raw["facts"].items():
        entry: dict[str, Any] = {"name": name, **spec}
        facts.append(entry)
    formula = raw["formula"]
    if formula["kind"] == "by_fact":
        max_per_award: Any = {
            "by_fact": formula["fact"],
            "values": {k: v.get("maximum") for k, v in formula["cases"].items()},
        }
    else:
        max_per_award = formula.get("maximum")  # None: no maximum per award (see the caps)
    return {
        "code": p.code,
        "name": {"zh": p.name_zh, "en": p.name_en},
        "source": p.source,
        "citation": p.citation,
        "review": p.review,
        "window": {
            "event_date": dict(raw["window"]["event_date"]),
            "years": dict(raw["window"]["years"]),
            "citation": p.window.citation,
        },
        "applicant_kinds": sorted(p.applicant_kinds.allowed),
        **({"subject": dict(raw["subject"])} if "subject" in raw else {}),
        "requires": [{"rule": "registered_in_shanghai", "citation": catalog.registered_citation}],
        "facts": facts,
        "requested_amount": dict(raw["requested_amount"]),
        "rules": [dict(r) for r in raw["rules"]],
        "formula": json.loads(json.dumps(formula)),
        "max_per_award": max_per_award,
        "caps": [dict(pool) for pool in raw["pools"]],
        "milestone": p.milestone,
    }


# --------------------------------------------------------------------------- loading


def canonical_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def catalog_version(data: object) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def catalog_version_of(document: object) -> str:
    """A catalog document's content address: "sha256:" + the hex digest of its canonical JSON
    (keys sorted, no spaces, UTF-8 as is). Equal documents have one version, whatever their key order."""
    return catalog_version(document)


_COMPILED_MAX = 64  # versions are immutable: a compiled one is good forever; a few are in use at once
_compiled: dict[str, Catalog] = {}


def compiled_catalog(version: str) -> Catalog | None:
    """The catalog of `version` if this process compiled it already (or it is the shipped one):
    a hot path that knows the version skips reading and hashing the document."""
    found = _compiled.get(version)
    if found is None and version == load_catalog().version:
        found = load_catalog()
    return found


def catalog_from_document(document: object) -> Catalog:
    """A published (or to-be-published) catalog document, validated and compiled; raises
    CatalogError. Compiled once per version and process: the hot paths (assessing, intake's
    validation) call this per application."""
    version = catalog_version_of(document)
    found = compiled_catalog(version)
    if found is not None:
        return found
    catalog = parse_catalog(document)
    if len(_compiled) >= _COMPILED_MAX:
        _compiled.pop(next(iter(_compiled)))
    _compiled[version] = catalog
    return catalog


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shipped catalog, validated and compiled once per process."""
    return load_catalog_file(CATALOG_PATH)


def load_catalog_file(path: str | Path) -> Catalog:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError([(str(path), str(exc))]) from exc
    return parse_catalog(data)


def parse_catalog(data: object) -> Catalog:
    """Validate a parsed catalog JSON document and compile it. Raises CatalogError."""
    doc = validate_document(data)
    assert isinstance(data, dict)  # validate_document admits nothing else
    return _catalog(doc, data)


# --------------------------------------------------------------------------- compiling


def _catalog(doc: CatalogDocument, raw: dict[str, Any]) -> Catalog:
    registered = doc.common.registered_in_shanghai
    return Catalog(
        version=catalog_version(raw),
        programs={p.code: _program(p, r) for p, r in zip(doc.programs, raw["programs"], strict=True)},
        registered_citation=registered.citation,
        registered_text=registered.text,
        raw=raw,
    )


def _program(p: ProgramDocument, raw: Mapping[str, Any]) -> Program:
    w, kinds, requested = p.window, p.applicant_kinds, p.requested_amount
    formula: Formula | FormulaSwitch
    if isinstance(p.formula, FormulaSwitchDocument):
        formula = FormulaSwitch(p.formula.fact, {k: _formula(f) for k, f in p.formula.cases.items()})
    else:
        formula = _formula(p.formula)
    return Program(
        code=p.code,
        name_zh=p.name_zh,
        name_en=p.name_en,
        source=p.source,
        citation=p.citation,
        review=p.review,
        window=Window(w.event_date.start, w.event_date.end, w.years.first, w.years.last, w.citation, w.text),
        applicant_kinds=KindsSpec(frozenset(kinds.allowed), kinds.citation, kinds.text),
        subject=None if p.subject is None else SubjectSpec(SUBJECT_FORMATS[p.subject.format], p.subject.citation,
                                                            p.subject.text),
        facts={name: _fact(name, f) for name, f in p.facts.items()},
        requested=RequestedSpec(requested.required, _condition(requested.required_when)),
        rules=tuple(_rule(r) for r in p.rules),
        formula=formula,
        pools=tuple(PoolSpec(x.name, x.scope, x.cap, x.citation, x.text) for x in p.pools),
        milestone=p.milestone,
        milestone_facts=tuple(MILESTONE_PLACEHOLDER.findall(p.milestone)),
        raw=raw,
    )


def _condition(c: ConditionDocument | None) -> Condition | None:
    return None if c is None else Condition(c.fact, c.equals)


def _rule(r: RuleDocument) -> RuleSpec:
    inclusive = True if r.inclusive is None else r.inclusive  # only thresholds have one
    return RuleSpec(r.rule, r.kind, r.fact, r.citation, r.text, _condition(r.when), r.min, inclusive)


def _fact(name: str, f: FactDocument) -> FactSpec:
    return FactSpec(name, f.type, f.required, _condition(f.required_when), tuple(f.values), f.min, f.description)


def _formula(f: AnyFormulaDocument) -> Formula:
    """Any of the four kinds; what its kind does not have stays None."""
    return Formula(
        kind=f.kind,
        maximum_fen=f.maximum,
        citation=f.citation,
        text=f.text,
        rate_bp=getattr(f, "rate_bp", None),
        base_fact=getattr(f, "base_fact", None),
        unit_fen=getattr(f, "unit_amount", None),
        count_fact=getattr(f, "count_fact", None),
        list_fact=getattr(f, "list_fact", None),
        per_item_max_fen=getattr(f, "per_item_max", None),
        max_items=getattr(f, "max_items", None),
    )
