"""The catalog document: pydantic models of `catalog.json`, strict, naming every bad path.

The shipped catalog and any version an admin publishes are one document, validated by these
models: an unknown, misplaced or missing key, a wrong type, a rule or formula on a fact the
program does not have is an error, never a silent default. `validate_document` raises a
CatalogError with every bad path and its message (`$.programs[GT-EQUITY].formula.rate_bp:
out of range`) in the words the loader has always used: pydantic's own messages are replaced
in one place (`_MESSAGES`), and the checks of this module say theirs as issues (`_fail`).

Amounts are parsed to integer fen and dates to `date` here; `catalog.py` compiles the
document into the frozen dataclasses the engine reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.kernel.money import AmountError, parse_amount

FACT_TYPES = frozenset({"date", "bool", "int", "amount", "enum", "uscc", "patents"})
# research_institution: universities and research institutes, the 事业单位 of 002 §一(三) that are
# neither enterprises nor hospitals.
APPLICANT_KINDS = frozenset({"enterprise", "medical_institution", "research_institution"})
# registered_in_shanghai: a uscc fact whose code was issued in Shanghai (characters 3-8 begin 31).
RULE_KINDS = frozenset({"required_true", "required_false", "threshold", "registered_in_shanghai"})
FORMULA_KINDS = frozenset({"rate", "per_unit", "requested", "patents"})
POOL_SCOPES = frozenset({"subject", "beneficiary_year", "project"})
# A pool's name says its scope: "<CODE>/subject", "<CODE>/beneficiary-year", "<CODE>/project", where
# CODE is usually the program's own; two programs naming one pool share it (POLICY.md, "Interpretations").
POOL_SUFFIX = {"subject": "subject", "beneficiary_year": "beneficiary-year", "project": "project"}
REVIEW_MODES = frozenset({"required", "auto"})


@dataclass(frozen=True)
class SubjectFormat:
    """What a program's subject must be when a registry number exists (POLICY.md, "Subjects").
    Matched against the subject NFKC-normalised, trimmed and in upper case."""

    pattern: re.Pattern[str]
    description: str


SUBJECT_FORMATS = {
    # WIPO PCT application number: receiving office, year, six digits (PCT/CN2023/123456).
    "pct_application": SubjectFormat(re.compile(r"^PCT/[A-Z]{2}\d{4}/\d{6}$"),
                                     "a PCT application number such as PCT/CN2023/123456"),
    # Clinical trial registries: China's drug trial platform (CTR20231234), the Chinese Clinical
    # Trial Registry (ChiCTR2300071234, formerly ChiCTR-TRC-12001234), ClinicalTrials.gov (NCT01234567).
    "trial_registration": SubjectFormat(re.compile(r"^(CTR\d{8}|CHICTR(-[A-Z]{2,4}-)?\d{8,10}|NCT\d{8})$"),
                                        "a trial registry number such as CTR20231234, ChiCTR2300071234 "
                                        "or NCT01234567"),
}
MILESTONE_PLACEHOLDER = re.compile(r"<([a-z_]+)>")
_CODE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
_FACT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

At = tuple[str | int, ...]  # a location below the node that reports it
Issue = tuple[At, str]


class CatalogError(ValueError):
    """The catalog JSON does not match its schema; `errors` holds (path, message) per bad path."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(f"{path}: {message}" for path, message in self.errors))


def _reject(*issues: Issue) -> PydanticCustomError:
    """An error of this module's own: its issues, each below the failing node, are what
    `_document_issues` reports (pydantic keeps one error per failing node)."""
    return PydanticCustomError("catalog", "{message}", {"message": issues[0][1], "issues": issues})


def _fail(message: str, *at: str | int) -> PydanticCustomError:
    return _reject((at, message))


def _keys_message(message: str, keys: Iterable[str]) -> str:
    """`unknown key(s) a, b`: a node's keys of one kind in one message."""
    return f"{message} {', '.join(sorted(keys))}"


# --------------------------------------------------------------------------- leaf types


def _check(ok: Callable[[Any], object], message: str, before: bool = False) -> AfterValidator | BeforeValidator:
    """Rejects a value unless `ok(value)`; `message` may show the value as `{!r}`."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise _fail(message.format(value))
        return value

    return BeforeValidator(check) if before else AfterValidator(check)


def _non_empty_list(value: object) -> bool:
    return isinstance(value, list) and bool(value)


def _amount_fen(value: object) -> int:
    try:
        return parse_amount(value)
    except AmountError as exc:
        raise _fail(str(exc)) from None


def _iso_date(value: object) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise _fail("must be an ISO date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _formula_kind(kinds: frozenset[str]) -> BeforeValidator:
    def check(value: object) -> object:
        kind = value.get("kind") if isinstance(value, dict) else None
        if not isinstance(kind, str) or kind not in kinds:
            raise _fail(f"unknown formula kind {kind!r}", "kind")
        return value

    return BeforeValidator(check)


def _applicant_kinds(kinds: list[str]) -> list[str]:
    for kind in kinds:
        if kind not in APPLICANT_KINDS:
            raise _fail(f"unknown applicant kind {kind!r}")
    return kinds


def _snake_case_names(facts: dict[str, FactDocument]) -> dict[str, FactDocument]:
    if bad := [((name,), "fact names are snake_case") for name in facts if not _FACT_NAME.match(name)]:
        raise _reject(*bad)
    return facts


Text = Annotated[str, _check(str.strip, "must be a non-empty string")]
TextList = Annotated[
    list[Text],
    _check(_non_empty_list, "must be a non-empty list of strings", before=True),
    _check(lambda v: len(set(v)) == len(v), "duplicate values"),
]
AmountFen = Annotated[int, BeforeValidator(_amount_fen), WithJsonSchema({"type": "string", "examples": ["1.00"]})]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
RateBp = Annotated[int, Field(ge=0, le=10_000)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_a_value(cls, data: Any) -> Any:
        # An optional key given as null is a wrong value, not an absent key: a stand-in that no
        # type accepts lets the field's own type reject it with its usual message.
        if not isinstance(data, dict) or None not in data.values():
            return data
        optional = {f.alias or name for name, f in cls.model_fields.items() if not f.is_required()}
        return {k: _NULL if v is None and k in optional else v for k, v in data.items()}


_NULL = object()


# --------------------------------------------------------------------------- the document


class ConditionDocument(_Node):
    """`fact == equals`, on a required enum or bool fact of the program."""

    fact: Text
    equals: Annotated[
        str | bool, _check(lambda v: isinstance(v, str | bool), "must be a string or a boolean", before=True)
    ]


class FactDocument(_Node):
    type: Annotated[Text, _check(FACT_TYPES.__contains__, "unknown fact type {!r}")]
    required: StrictBool
    required_when: ConditionDocument | None = None  # with required false
    values: TextList = []  # enum facts, and only they
    min: Annotated[int, Field(ge=0)] | None = None  # int facts only
    description: Text

    @model_validator(mode="before")
    @classmethod
    def _keys_of_its_type(cls, data: Any) -> Any:
        # Before the values: a key its type does not take is misplaced, whatever it holds.
        ftype = data.get("type") if isinstance(data, dict) else None
        if not isinstance(ftype, str) or ftype not in FACT_TYPES:
            return data
        issues: list[Issue] = []
        if ftype == "enum" and "values" not in data:
            issues.append(((), "an enum fact needs values"))
        if ftype != "enum" and "values" in data:
            issues.append((("values",), "only enum facts have values"))
        if ftype != "int" and "min" in data:
            issues.append((("min",), "only int facts have a minimum"))
        if issues:
            raise _reject(*issues)
        return data

    @model_validator(mode="after")
    def _condition_only_when_optional(self) -> Self:
        if self.required and self.required_when is not None:
            raise _fail("required_when only makes sense with required false")
        return self


class RequestedDocument(_Node):
    required: StrictBool
    required_when: ConditionDocument | None = None


class RuleDocument(_Node):
    rule: Text  # "<kind>.<fact>"
    kind: Annotated[Text, _check(RULE_KINDS.__contains__, "unknown rule kind {!r}")]
    fact: Text
    when: ConditionDocument | None = None
    min: AmountFen | None = None  # threshold only
    inclusive: StrictBool | None = None  # threshold only: 以上 includes the bound
    citation: Text
    text: Text

    @model_validator(mode="before")
    @classmethod
    def _name_and_keys_of_its_kind(cls, data: Any) -> Any:
        # Before the values, as for facts; the name first: a wrong kind shows in it.
        if not isinstance(data, dict):
            return data
        kind, fact, rule = data.get("kind"), data.get("fact"), data.get("rule")
        if not all(isinstance(v, str) and v.strip() for v in (kind, fact, rule)) or kind not in RULE_KINDS:
            return data
        if rule != f"{kind}.{fact}":
            raise _fail(f"must be {kind}.{fact}", "rule")
        if kind == "threshold" and not {"min", "inclusive"} <= data.keys():
            raise _fail("a threshold needs min and inclusive")
        if kind != "threshold" and ("min" in data or "inclusive" in data):
            raise _fail("min/inclusive belong to threshold rules only")
        return data


class _FormulaDocument(_Node):
    # Per award, where the policy states one for the award itself. Left out when it does not: a
    # cap per beneficiary and year is a pool, never folded into what one award is entitled to.
    maximum: AmountFen | None = None
    citation: Text
    text: Text


class RateFormulaDocument(_FormulaDocument):
    kind: Literal["rate"]
    rate_bp: RateBp
    base_fact: Text  # an amount fact


class PerUnitFormulaDocument(_FormulaDocument):
    kind: Literal["per_unit"]
    unit_amount: AmountFen
    count_fact: Text  # an int fact


class RequestedFormulaDocument(_FormulaDocument):
    kind: Literal["requested"]
    maximum: AmountFen  # the ceiling the request is clipped to (最高): never open-ended


class PatentsFormulaDocument(_FormulaDocument):
    kind: Literal["patents"]
    list_fact: Text  # a patents fact
    rate_bp: RateBp
    per_item_max: AmountFen
    max_items: Annotated[int, Field(ge=1)]


AnyFormulaDocument = (
    RateFormulaDocument | PerUnitFormulaDocument | RequestedFormulaDocument | PatentsFormulaDocument
)
FormulaDocument = Annotated[AnyFormulaDocument, Field(discriminator="kind"), _formula_kind(FORMULA_KINDS)]


class FormulaSwitchDocument(_Node):
    """The formula depends on a required enum or bool fact: one case per value ("true"/"false")."""

    kind: Literal["by_fact"]
    fact: Text
    cases: dict[str, FormulaDocument]
    _unknown_cases: tuple[str, ...] = PrivateAttr(default=())  # set by the program, which knows the fact


class PoolDocument(_Node):
    name: Text  # "<CODE>/<scope>" (POOL_SUFFIX); the same name in two programs is one pool
    scope: Annotated[Text, _check(POOL_SCOPES.__contains__, "unknown pool scope {!r}")]
    cap: AmountFen
    citation: Text
    text: Text


class DateRangeDocument(_Node):
    start: IsoDate
    end: IsoDate

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise _fail("end before start")
        return self


class YearRangeDocument(_Node):
    first: Annotated[int, Field(ge=2000)]
    last: int

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise _fail("out of range", "last")
        return self


class WindowDocument(_Node):
    event_date: DateRangeDocument
    years: YearRangeDocument
    citation: Text
    text: Text


class ApplicantKindsDocument(_Node):
    allowed: Annotated[TextList, AfterValidator(_applicant_kinds)]
    citation: Text
    text: Text


class SubjectDocument(_Node):
    """The subject's form, where a registry number identifies what is funded."""

    format: Annotated[Text, _check(SUBJECT_FORMATS.__contains__, "unknown subject format {!r}")]
    citation: Text
    text: Text


class ProgramDocument(_Node):
    code: Annotated[Text, _check(_CODE.match, "{!r} is not an upper-case program code")]
    name_zh: Text
    name_en: Text
    source: Text  # the seed file
    citation: Text
    review: Annotated[Text, _check(REVIEW_MODES.__contains__, "must be required or auto")]
    window: WindowDocument
    applicant_kinds: ApplicantKindsDocument
    subject: SubjectDocument | None = None  # free text when left out
    facts: Annotated[dict[str, FactDocument], AfterValidator(_snake_case_names)]
    requested_amount: RequestedDocument
    rules: list[RuleDocument]
    formula: Annotated[
        AnyFormulaDocument | FormulaSwitchDocument,
        Field(discriminator="kind"),
        _formula_kind(FORMULA_KINDS | {"by_fact"}),
    ]
    pools: list[PoolDocument]
    milestone: Text  # may name required enum or bool facts: "phase_<phase>"

    @field_validator("formula", mode="wrap")
    @classmethod
    def _cases_of_its_fact(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        # A case that the switch's fact does not have is an unknown key whatever it holds: it is
        # set aside unvalidated, and reported in its turn by the program's checks.
        facts = info.data.get("facts")
        if facts is None or not isinstance(value, dict) or value.get("kind") != "by_fact":
            return handler(value)
        expected, cases = _cases_of(value.get("fact"), facts), value.get("cases")
        if expected is None or not isinstance(cases, dict):
            return handler(value)
        switch = handler({**value, "cases": {k: v for k, v in cases.items() if k in expected}})
        switch._unknown_cases = tuple(k for k in cases if k not in expected)
        return switch

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if issues := list(_program_issues(self)):
            raise _reject(*issues)
        return self


class RegisteredDocument(_Node):
    citation: Text
    text: Text


class CommonDocument(_Node):
    registered_in_shanghai: RegisteredDocument


class CatalogDocument(_Node):
    catalog: Text
    revision: Annotated[int, Field(ge=1)]
    common: CommonDocument
    programs: Annotated[list[ProgramDocument], _check(_non_empty_list, "must be a non-empty list", before=True)]

    @model_validator(mode="after")
    def _unique_programs_and_shared_pools(self) -> Self:
        issues: list[Issue] = []
        codes: set[str] = set()
        pools: dict[str, tuple[str, PoolDocument]] = {}  # name -> the first program naming it, its pool
        for i, program in enumerate(self.programs):
            if program.code in codes:
                issues.append((("programs", i, "code"), f"duplicate program {program.code}"))
                continue
            codes.add(program.code)
            for j, pool in enumerate(program.pools):
                first = pools.setdefault(pool.name, (program.code, pool))
                # One name is one pool: every program sharing it must mean the same one (its
                # scope is in its name, checked with the program).
                if first[0] != program.code and pool.cap != first[1].cap:
                    issues.append((("programs", i, "pools", j, "cap"),
                                   f"pool {pool.name} is shared with {first[0]}: the same cap is required"))
        if issues:
            raise _reject(*issues)
        return self


# --------------------------------------------------------------------------- checks across a program


def _program_issues(p: ProgramDocument) -> Iterator[Issue]:
    facts = p.facts
    event = facts.get("event_date")
    if event is None or event.type != "date" or not event.required:
        yield ("facts", "event_date"), "every program requires a date fact event_date"
    for name, spec in facts.items():
        if spec.required_when is not None:
            yield from _condition_issues(spec.required_when, facts, ("facts", name, "required_when"))
    if p.requested_amount.required_when is not None:
        at = ("requested_amount", "required_when")
        yield from _condition_issues(p.requested_amount.required_when, facts, at)
    for i, rule in enumerate(p.rules):
        yield from _rule_issues(rule, facts, ("rules", i))
    if len({r.rule for r in p.rules}) != len(p.rules):
        yield ("rules",), "duplicate rule names"
    yield from _formula_issues(p.formula, facts)
    names: set[str] = set()
    for i, pool in enumerate(p.pools):
        prefix, _, suffix = pool.name.partition("/")
        if not _CODE.match(prefix) or suffix != POOL_SUFFIX[pool.scope]:
            yield ("pools", i, "name"), f"must be <CODE>/{POOL_SUFFIX[pool.scope]} (such as {p.code}/{POOL_SUFFIX[pool.scope]})"
        elif pool.name in names:
            yield ("pools", i, "name"), f"duplicate pool {pool.name}"
        names.add(pool.name)
    for name in dict.fromkeys(MILESTONE_PLACEHOLDER.findall(p.milestone)):
        placeholder = facts.get(name)
        if placeholder is None or placeholder.type not in ("enum", "bool") or not placeholder.required:
            yield ("milestone",), f"<{name}> must name a required enum or bool fact"


def _condition_issues(cond: ConditionDocument, facts: Mapping[str, FactDocument], at: At) -> Iterator[Issue]:
    spec = facts.get(cond.fact)
    if spec is None or not spec.required:
        yield (*at, "fact"), f"{cond.fact!r} must be a required fact of the program"
    elif spec.type == "enum":
        if cond.equals not in spec.values:
            yield (*at, "equals"), f"{cond.equals!r} is not a value of {cond.fact}"
    elif spec.type == "bool":
        if not isinstance(cond.equals, bool):
            yield (*at, "equals"), f"{cond.fact} is a bool"
    else:
        yield (*at, "fact"), "conditions test enum or bool facts only"


def _rule_issues(rule: RuleDocument, facts: Mapping[str, FactDocument], at: At) -> Iterator[Issue]:
    if rule.when is not None:
        yield from _condition_issues(rule.when, facts, (*at, "when"))
    spec = facts.get(rule.fact)
    if rule.kind == "threshold":
        if spec is None or spec.type != "amount":
            yield (*at, "fact"), "a threshold applies to an amount fact"
    elif rule.kind == "registered_in_shanghai":
        if spec is None or spec.type != "uscc":
            yield (*at, "fact"), "registered_in_shanghai applies to a uscc fact"
    elif spec is None or spec.type != "bool":
        yield (*at, "fact"), f"{rule.kind} applies to a bool fact"
    if spec is not None and not spec.required and (rule.when is None or spec.required_when != rule.when):
        yield at, "a rule on an optional fact must carry the same condition as the fact"


def _cases_of(fact: object, facts: Mapping[str, FactDocument]) -> set[str] | None:
    """The cases of a switch on `fact`; None unless it is a required enum or bool fact."""
    spec = facts.get(fact) if isinstance(fact, str) else None
    if spec is None or not spec.required or spec.type not in ("enum", "bool"):
        return None
    return set(spec.values) if spec.type == "enum" else {"true", "false"}


def _formula_issues(
    formula: AnyFormulaDocument | FormulaSwitchDocument, facts: Mapping[str, FactDocument]
) -> Iterator[Issue]:
    if not isinstance(formula, FormulaSwitchDocument):
        yield from _formula_fact_issues(formula, facts, ("formula",), None)
        return
    expected = _cases_of(formula.fact, facts)
    if expected is None:
        yield ("formula", "fact"), "must be a required enum or bool fact"
        return
    if formula._unknown_cases:
        yield ("formula", "cases"), _keys_message("unknown key(s)", formula._unknown_cases)
    if missing := expected - set(formula.cases):
        yield ("formula", "cases"), _keys_message("missing key(s)", missing)
    enum = facts[formula.fact].type == "enum"
    for key, case in formula.cases.items():
        when = (formula.fact, key if enum else key == "true")
        yield from _formula_fact_issues(case, facts, ("formula", "cases", key), when)


_FORMULA_FACT = {  # the key naming the fact a formula reads, and that fact's type
    "rate": ("base_fact", "amount"),
    "per_unit": ("count_fact", "int"),
    "patents": ("list_fact", "patents"),
}


def _formula_fact_issues(
    formula: AnyFormulaDocument, facts: Mapping[str, FactDocument], at: At, case: tuple[str, str | bool] | None
) -> Iterator[Issue]:
    """The fact a formula reads has its type and is given whenever the formula applies."""
    if formula.kind not in _FORMULA_FACT:
        return
    key, ftype = _FORMULA_FACT[formula.kind]
    name = getattr(formula, key)
    spec = facts.get(name)
    if spec is None or spec.type != ftype:
        yield (*at, key), f"{name!r} must be a {ftype} fact of the program"
    elif not spec.required:
        when = spec.required_when
        if case is None or when is None or (when.fact, when.equals) != case:
            yield (*at, key), f"{name!r} is not required whenever this formula applies"


# --------------------------------------------------------------------------- validation and its errors

_MESSAGES = {
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a non-empty string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "greater_than_equal": "out of range",
    "less_than_equal": "out of range",
}
_KEYS = {"extra_forbidden": "unknown key(s)", "missing": "missing key(s)"}  # in this order per node


API_ROOT = "document"
"""The root of the paths `document_problems` names: the API's request body key."""

PathOf = Callable[[At, At], str]  # (pydantic's location, a check's location below it) -> the path


def validate_document(data: object) -> CatalogDocument:
    """The parsed JSON validated; a CatalogError naming each bad path otherwise (`$.programs[GT-EQUITY]…`)."""
    if not isinstance(data, dict):  # pydantic would also take a CatalogDocument: the JSON is what counts
        raise CatalogError([("$", _MESSAGES["model_type"])])
    try:
        return CatalogDocument.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(_document_issues(exc, lambda loc, at: _path(loc, at, data))) from None


def document_problems(data: object) -> list[tuple[str, str]]:
    """Every bad path of a catalog document as the API names it (`document.programs[3].formula.rate_bp`:
    rooted at the request's `document`, programs by index), with its message; empty when valid."""
    if not isinstance(data, dict):
        return [(API_ROOT, _MESSAGES["model_type"])]
    try:
        CatalogDocument.model_validate(data)
    except ValidationError as exc:
        return _document_issues(exc, lambda loc, at: _render(API_ROOT, (*loc, *at)))
    return []


def _document_issues(exc: ValidationError, path_of: PathOf) -> list[tuple[str, str]]:
    """pydantic's errors as the catalog's (path, message) pairs, in its order; a node's unknown
    keys, then its missing keys, are gathered into one message each."""
    found: dict[tuple[str, str], list[str]] = {}  # (path, message) -> the keys it names
    for error in exc.errors():
        loc = _without_union_tags(error["loc"])
        if error["type"] in _KEYS:
            path = path_of(loc[:-1], ())
            for message in _KEYS.values():
                found.setdefault((path, message), [])
            found[(path, _KEYS[error["type"]])].append(str(loc[-1]))
        elif error["type"] == "catalog":
            for at, message in error["ctx"]["issues"]:
                found.setdefault((path_of(loc, at), message), [])
        else:
            found.setdefault((path_of(loc, ()), _MESSAGES.get(error["type"], error["msg"])), [])
    return [
        (path, _keys_message(message, keys) if keys else message)
        for (path, message), keys in found.items()
        if keys or message not in _KEYS.values()
    ]


def _without_union_tags(loc: tuple[str | int, ...]) -> At:
    # Inside a tagged union pydantic puts the tag in the location (`formula.rate.rate_bp`); the
    # document has no such level. The formulas are the only unions: a program's, a switch's cases.
    if len(loc) > 3 and loc[0] == "programs" and loc[2] == "formula":
        tag, loc = loc[3], loc[:3] + loc[4:]
        if tag == "by_fact" and len(loc) > 5 and loc[3] == "cases":
            loc = loc[:5] + loc[6:]
    return loc


def _path(loc: At, at: At, data: Mapping[str, Any]) -> str:
    """`$.programs[GT-EQUITY].formula.rate_bp`. A program is named by its code below its own keys,
    by its index for the object itself, its code, and the checks across programs (`at` only)."""
    parts = (*loc, *at)
    if len(parts) > 2 and isinstance(parts[1], int) and len(loc) > 1 and parts[2] != "code":
        parts = (parts[0], _code_of(data, parts[1]) or parts[1], *parts[2:])
    return _render("$", parts)


def _render(root: str, parts: At) -> str:
    """`root.key[index].key`: a list's items (and programs named by code) in brackets."""
    text = root
    for n, part in enumerate(parts):
        if isinstance(part, int) or (n == 1 and parts[0] == "programs"):
            text += f"[{part}]"
        else:
            text += f".{part}"
    return text


def _code_of(data: Mapping[str, Any], index: int) -> str | None:
    program = data["programs"][index]
    code = program.get("code") if isinstance(program, dict) else None
    return code if isinstance(code, str) and _CODE.match(code) else None
