"""The program catalog: versioned data with a citation on every rule.

`catalog.json` is the source; this module validates it strictly when it is loaded (an
unknown, misplaced or missing key is a CatalogError, never a silent default) and compiles
it into frozen dataclasses with amounts already in integer fen and dates already parsed,
so the engine does no parsing per assessment.

The catalog's version is "sha256:" + the hex digest of its canonical JSON encoding, so an
assessment can record exactly which rules it applied.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.kernel.money import AmountError, parse_amount

CATALOG_PATH = Path(__file__).with_name("catalog.json")

FACT_TYPES = frozenset({"date", "bool", "int", "amount", "enum", "uscc", "patents"})
APPLICANT_KINDS = frozenset({"enterprise", "medical_institution"})
RULE_KINDS = frozenset({"required_true", "required_false", "threshold"})
FORMULA_KINDS = frozenset({"rate", "per_unit", "requested", "patents"})
POOL_SCOPES = frozenset({"subject", "beneficiary_year"})
_MILESTONE_PLACEHOLDER = re.compile(r"<([a-z_]+)>")
_CODE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")


class CatalogError(ValueError):
    """The catalog JSON does not match its schema."""


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
    kind: str  # required_true | required_false | threshold
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
    maximum_fen: int
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
    scope: str  # subject | beneficiary_year
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
class Program:
    code: str
    name_zh: str
    name_en: str
    source: str
    citation: str
    window: Window
    applicant_kinds: KindsSpec
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
        return _MILESTONE_PLACEHOLDER.sub(lambda m: case_key(facts[m.group(1)]), self.milestone)


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
            "values": {k: v["maximum"] for k, v in formula["cases"].items()},
        }
    else:
        max_per_award = formula["maximum"]
    return {
        "code": p.code,
        "name": {"zh": p.name_zh, "en": p.name_en},
        "source": p.source,
        "citation": p.citation,
        "window": {
            "event_date": dict(raw["window"]["event_date"]),
            "years": dict(raw["window"]["years"]),
            "citation": p.window.citation,
        },
        "applicant_kinds": sorted(p.applicant_kinds.allowed),
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


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shipped catalog, validated and compiled once per process."""
    return load_catalog_file(CATALOG_PATH)


def load_catalog_file(path: str | Path) -> Catalog:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    return parse_catalog(data)


def parse_catalog(data: object) -> Catalog:
    """Validate a parsed catalog JSON document and compile it. Raises CatalogError."""
    top = _obj(data, "$", required={"catalog", "revision", "common", "programs"})
    _str(top["catalog"], "$.catalog")
    _int(top["revision"], "$.revision", minimum=1)
    common = _obj(top["common"], "$.common", required={"registered_in_shanghai"})
    reg = _obj(
        common["registered_in_shanghai"], "$.common.registered_in_shanghai", required={"citation", "text"}
    )
    raw_programs = top["programs"]
    if not isinstance(raw_programs, list) or not raw_programs:
        raise CatalogError("$.programs: must be a non-empty list")
    programs: dict[str, Program] = {}
    pool_names: set[str] = set()
    for i, raw in enumerate(raw_programs):
        program = _program(raw, f"$.programs[{i}]")
        if program.code in programs:
            raise CatalogError(f"$.programs[{i}].code: duplicate program {program.code}")
        for pool in program.pools:
            if pool.name in pool_names:
                raise CatalogError(f"$.programs[{i}].pools: duplicate pool {pool.name}")
            pool_names.add(pool.name)
        programs[program.code] = program
    return Catalog(
        version=catalog_version(data),
        programs=programs,
        registered_citation=_str(reg["citation"], "$.common.registered_in_shanghai.citation"),
        registered_text=_str(reg["text"], "$.common.registered_in_shanghai.text"),
        raw=top,
    )


_PROGRAM_KEYS = {
    "code",
    "name_zh",
    "name_en",
    "source",
    "citation",
    "window",
    "applicant_kinds",
    "facts",
    "requested_amount",
    "rules",
    "formula",
    "pools",
    "milestone",
}


def _program(raw: object, path: str) -> Program:
    p = _obj(raw, path, required=_PROGRAM_KEYS)
    code = _str(p["code"], f"{path}.code")
    if not _CODE.match(code):
        raise CatalogError(f"{path}.code: {code!r} is not an upper-case program code")
    path = f"$.programs[{code}]"
    window = _window(p["window"], f"{path}.window")
    kinds = _obj(p["applicant_kinds"], f"{path}.applicant_kinds", required={"allowed", "citation", "text"})
    allowed = _str_list(kinds["allowed"], f"{path}.applicant_kinds.allowed")
    for kind in allowed:
        if kind not in APPLICANT_KINDS:
            raise CatalogError(f"{path}.applicant_kinds.allowed: unknown applicant kind {kind!r}")
    facts_raw = _obj(p["facts"], f"{path}.facts")
    facts = {name: _fact(name, spec, f"{path}.facts.{name}") for name, spec in facts_raw.items()}
    if "event_date" not in facts or facts["event_date"].type != "date" or not facts["event_date"].required:
        raise CatalogError(f"{path}.facts.event_date: every program requires a date fact event_date")
    for spec in facts.values():
        if spec.required_when is not None:
            _check_condition(spec.required_when, facts, f"{path}.facts.{spec.name}.required_when")
    requested = _requested(p["requested_amount"], f"{path}.requested_amount", facts)
    rules_raw = p["rules"]
    if not isinstance(rules_raw, list):
        raise CatalogError(f"{path}.rules: must be a list")
    rules = tuple(_rule(r, f"{path}.rules[{i}]", facts) for i, r in enumerate(rules_raw))
    if len({r.rule for r in rules}) != len(rules):
        raise CatalogError(f"{path}.rules: duplicate rule names")
    formula = _formula_or_switch(p["formula"], f"{path}.formula", facts)
    pools_raw = p["pools"]
    if not isinstance(pools_raw, list):
        raise CatalogError(f"{path}.pools: must be a list")
    pools = tuple(_pool(x, f"{path}.pools[{i}]", code) for i, x in enumerate(pools_raw))
    milestone = _str(p["milestone"], f"{path}.milestone")
    milestone_facts = tuple(_MILESTONE_PLACEHOLDER.findall(milestone))
    for name in milestone_facts:
        placeholder = facts.get(name)
        if placeholder is None or placeholder.type not in ("enum", "bool") or not placeholder.required:
            raise CatalogError(f"{path}.milestone: <{name}> must name a required enum or bool fact")
    return Program(
        code=code,
        name_zh=_str(p["name_zh"], f"{path}.name_zh"),
        name_en=_str(p["name_en"], f"{path}.name_en"),
        source=_str(p["source"], f"{path}.source"),
        citation=_str(p["citation"], f"{path}.citation"),
        window=window,
        applicant_kinds=KindsSpec(
            allowed=frozenset(allowed),
            citation=_str(kinds["citation"], f"{path}.applicant_kinds.citation"),
            text=_str(kinds["text"], f"{path}.applicant_kinds.text"),
        ),
        facts=facts,
        requested=requested,
        rules=rules,
        formula=formula,
        pools=pools,
        milestone=milestone,
        milestone_facts=milestone_facts,
        raw=p,
    )


def _window(raw: object, path: str) -> Window:
    w = _obj(raw, path, required={"event_date", "years", "citation", "text"})
    ev = _obj(w["event_date"], f"{path}.event_date", required={"start", "end"})
    yrs = _obj(w["years"], f"{path}.years", required={"first", "last"})
    start = _date(ev["start"], f"{path}.event_date.start")
    end = _date(ev["end"], f"{path}.event_date.end")
    if end < start:
        raise CatalogError(f"{path}.event_date: end before start")
    first = _int(yrs["first"], f"{path}.years.first", minimum=2000)
    last = _int(yrs["last"], f"{path}.years.last", minimum=first)
    return Window(
        start, end, first, last, _str(w["citation"], f"{path}.citation"), _str(w["text"], f"{path}.text")
    )


def _fact(name: str, raw: object, path: str) -> FactSpec:
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise CatalogError(f"{path}: fact names are snake_case")
    f = _obj(
        raw, path, required={"type", "required", "description"}, optional={"required_when", "values", "min"}
    )
    ftype = _str(f["type"], f"{path}.type")
    if ftype not in FACT_TYPES:
        raise CatalogError(f"{path}.type: unknown fact type {ftype!r}")
    values: tuple[str, ...] = ()
    if ftype == "enum":
        if "values" not in f:
            raise CatalogError(f"{path}: an enum fact needs values")
        values = tuple(_str_list(f["values"], f"{path}.values"))
    elif "values" in f:
        raise CatalogError(f"{path}.values: only enum facts have values")
    minimum = None
    if "min" in f:
        if ftype != "int":
            raise CatalogError(f"{path}.min: only int facts have a minimum")
        minimum = _int(f["min"], f"{path}.min", minimum=0)
    required = _bool(f["required"], f"{path}.required")
    when = _condition(f["required_when"], f"{path}.required_when") if "required_when" in f else None
    if required and when is not None:
        raise CatalogError(f"{path}: required_when only makes sense with required false")
    return FactSpec(
        name, ftype, required, when, values, minimum, _str(f["description"], f"{path}.description")
    )


def _condition(raw: object, path: str) -> Condition:
    c = _obj(raw, path, required={"fact", "equals"})
    equals = c["equals"]
    if not isinstance(equals, str | bool):
        raise CatalogError(f"{path}.equals: must be a string or a boolean")
    return Condition(_str(c["fact"], f"{path}.fact"), equals)


def _check_condition(cond: Condition, facts: Mapping[str, FactSpec], path: str) -> None:
    spec = facts.get(cond.fact)
    if spec is None or not spec.required:
        raise CatalogError(f"{path}.fact: {cond.fact!r} must be a required fact of the program")
    if spec.type == "enum" and cond.equals not in spec.values:
        raise CatalogError(f"{path}.equals: {cond.equals!r} is not a value of {cond.fact}")
    if spec.type == "bool" and not isinstance(cond.equals, bool):
        raise CatalogError(f"{path}.equals: {cond.fact} is a bool")
    if spec.type not in ("enum", "bool"):
        raise CatalogError(f"{path}.fact: conditions test enum or bool facts only")


def _requested(raw: object, path: str, facts: Mapping[str, FactSpec]) -> RequestedSpec:
    r = _obj(raw, path, required={"required"}, optional={"required_when"})
    when = None
    if "required_when" in r:
        when = _condition(r["required_when"], f"{path}.required_when")
        _check_condition(when, facts, f"{path}.required_when")
    return RequestedSpec(_bool(r["required"], f"{path}.required"), when)


def _rule(raw: object, path: str, facts: Mapping[str, FactSpec]) -> RuleSpec:
    r = _obj(
        raw,
        path,
        required={"rule", "kind", "fact", "citation", "text"},
        optional={"when", "min", "inclusive"},
    )
    kind = _str(r["kind"], f"{path}.kind")
    if kind not in RULE_KINDS:
        raise CatalogError(f"{path}.kind: unknown rule kind {kind!r}")
    fact = _str(r["fact"], f"{path}.fact")
    spec = facts.get(fact)
    name = _str(r["rule"], f"{path}.rule")
    if name != f"{kind}.{fact}":
        raise CatalogError(f"{path}.rule: must be {kind}.{fact}")
    when = None
    if "when" in r:
        when = _condition(r["when"], f"{path}.when")
        _check_condition(when, facts, f"{path}.when")
    min_fen = None
    inclusive = True
    if kind == "threshold":
        if spec is None or spec.type != "amount":
            raise CatalogError(f"{path}.fact: a threshold applies to an amount fact")
        if "min" not in r or "inclusive" not in r:
            raise CatalogError(f"{path}: a threshold needs min and inclusive")
        min_fen = _amount(r["min"], f"{path}.min")
        inclusive = _bool(r["inclusive"], f"{path}.inclusive")
    else:
        if spec is None or spec.type != "bool":
            raise CatalogError(f"{path}.fact: {kind} applies to a bool fact")
        if "min" in r or "inclusive" in r:
            raise CatalogError(f"{path}: min/inclusive belong to threshold rules only")
    if spec is not None and not spec.required and (when is None or spec.required_when != when):
        raise CatalogError(f"{path}: a rule on an optional fact must carry the same condition as the fact")
    return RuleSpec(
        name,
        kind,
        fact,
        _str(r["citation"], f"{path}.citation"),
        _str(r["text"], f"{path}.text"),
        when,
        min_fen,
        inclusive,
    )


def _formula_or_switch(raw: object, path: str, facts: Mapping[str, FactSpec]) -> Formula | FormulaSwitch:
    if isinstance(raw, dict) and raw.get("kind") == "by_fact":
        s = _obj(raw, path, required={"kind", "fact", "cases"})
        fact = _str(s["fact"], f"{path}.fact")
        spec = facts.get(fact)
        if spec is None or not spec.required or spec.type not in ("enum", "bool"):
            raise CatalogError(f"{path}.fact: must be a required enum or bool fact")
        expected = set(spec.values) if spec.type == "enum" else {"true", "false"}
        cases_raw = _obj(s["cases"], f"{path}.cases", required=expected)
        cases = {
            k: _formula(
                v, f"{path}.cases.{k}", facts, Condition(fact, k if spec.type == "enum" else k == "true")
            )
            for k, v in cases_raw.items()
        }
        return FormulaSwitch(fact, cases)
    return _formula(raw, path, facts, None)


def _formula(raw: object, path: str, facts: Mapping[str, FactSpec], case: Condition | None) -> Formula:
    common = {"kind", "maximum", "citation", "text"}
    kind = raw.get("kind") if isinstance(raw, dict) else None
    extra = {
        "rate": {"rate_bp", "base_fact"},
        "per_unit": {"unit_amount", "count_fact"},
        "requested": set(),
        "patents": {"list_fact", "rate_bp", "per_item_max", "max_items"},
    }.get(kind if isinstance(kind, str) else "")
    if extra is None:
        raise CatalogError(f"{path}.kind: unknown formula kind {kind!r}")
    f = _obj(raw, path, required=common | extra)

    def fact_of(key: str, ftype: str) -> str:
        name = _str(f[key], f"{path}.{key}")
        spec = facts.get(name)
        if spec is None or spec.type != ftype:
            raise CatalogError(f"{path}.{key}: {name!r} must be a {ftype} fact of the program")
        if not spec.required and (case is None or spec.required_when != case):
            raise CatalogError(f"{path}.{key}: {name!r} is not required whenever this formula applies")
        return name

    out = Formula(
        kind=str(kind),
        maximum_fen=_amount(f["maximum"], f"{path}.maximum"),
        citation=_str(f["citation"], f"{path}.citation"),
        text=_str(f["text"], f"{path}.text"),
    )
    if kind == "rate":
        return _replace(
            out,
            rate_bp=_int(f["rate_bp"], f"{path}.rate_bp", minimum=0, maximum=10_000),
            base_fact=fact_of("base_fact", "amount"),
        )
    if kind == "per_unit":
        return _replace(
            out,
            unit_fen=_amount(f["unit_amount"], f"{path}.unit_amount"),
            count_fact=fact_of("count_fact", "int"),
        )
    if kind == "patents":
        return _replace(
            out,
            list_fact=fact_of("list_fact", "patents"),
            rate_bp=_int(f["rate_bp"], f"{path}.rate_bp", minimum=0, maximum=10_000),
            per_item_max_fen=_amount(f["per_item_max"], f"{path}.per_item_max"),
            max_items=_int(f["max_items"], f"{path}.max_items", minimum=1),
        )
    return out


def _replace(f: Formula, **kw: Any) -> Formula:
    from dataclasses import replace

    return replace(f, **kw)


def _pool(raw: object, path: str, code: str) -> PoolSpec:
    p = _obj(raw, path, required={"name", "scope", "cap", "citation", "text"})
    scope = _str(p["scope"], f"{path}.scope")
    if scope not in POOL_SCOPES:
        raise CatalogError(f"{path}.scope: unknown pool scope {scope!r}")
    name = _str(p["name"], f"{path}.name")
    expected = f"{code}/subject" if scope == "subject" else f"{code}/beneficiary-year"
    if name != expected:
        raise CatalogError(f"{path}.name: must be {expected}")
    return PoolSpec(
        name,
        scope,
        _amount(p["cap"], f"{path}.cap"),
        _str(p["citation"], f"{path}.citation"),
        _str(p["text"], f"{path}.text"),
    )


# --------------------------------------------------------------------------- schema primitives


def _obj(
    raw: object, path: str, required: set[str] | None = None, optional: set[str] | None = None
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: must be an object")
    if required is not None:
        allowed = required | (optional or set())
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise CatalogError(f"{path}: unknown key(s) {', '.join(unknown)}")
        missing = sorted(required - set(raw))
        if missing:
            raise CatalogError(f"{path}: missing key(s) {', '.join(missing)}")
    return raw


def _str(raw: object, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise CatalogError(f"{path}: must be a non-empty string")
    return raw


def _str_list(raw: object, path: str) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{path}: must be a non-empty list of strings")
    out = [_str(x, f"{path}[{i}]") for i, x in enumerate(raw)]
    if len(set(out)) != len(out):
        raise CatalogError(f"{path}: duplicate values")
    return out


def _bool(raw: object, path: str) -> bool:
    if not isinstance(raw, bool):
        raise CatalogError(f"{path}: must be true or false")
    return raw


def _int(raw: object, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise CatalogError(f"{path}: must be an integer")
    if (minimum is not None and raw < minimum) or (maximum is not None and raw > maximum):
        raise CatalogError(f"{path}: out of range")
    return raw


def _amount(raw: object, path: str) -> int:
    try:
        return parse_amount(raw)
    except AmountError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def _date(raw: object, path: str) -> date:
    if not isinstance(raw, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", raw):
        raise CatalogError(f"{path}: must be an ISO date")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
