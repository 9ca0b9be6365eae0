"""Application validation: the one place that decides whether a body is well-formed.

Intake answers 422 with these errors; eligibility validates events with the same function,
so the two cannot disagree. Only malformed input is an error here. Facts that are
well-formed but do not qualify (a required-true bool that is false, an event outside the
window, a threshold not reached, an applicant kind the program does not admit, an applicant
not registered in Shanghai) are eligibility decisions, made by the engine with a citation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

import pycountry

from shared.kernel.errors import FieldProblem
from shared.kernel.money import AmountError, format_fen, parse_amount
from shared.kernel.subjects import SubjectRefused, subject_key
from shared.kernel.uscc import uscc_problem
from shared.policy.catalog import Catalog, FactSpec, Program, load_catalog
from shared.policy.catalog_document import APPLICANT_KINDS

YEAR_MIN, YEAR_MAX = 2000, 2100
TEXT_MAX = 200
PATENTS_MAX = 200  # a bound on the list; one PCT application never reaches it
_TOP_KEYS = frozenset({"program", "year", "applicant", "subject", "requested_amount", "facts"})
_APPLICANT_KEYS = frozenset({"id", "name", "kind", "registered_in_shanghai"})
_PATENT_KEYS = frozenset({"country", "official_fees", "granted_after_substantive_examination"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# 000 §五(三) pays for PCT patents 向国外申请 (filed abroad): the granting office is a foreign one.
# Countries by ISO 3166-1 alpha-2 (pycountry's copy of the standard), less China itself; and the
# regional offices by their WIPO ST.3 codes: European, Eurasian, ARIPO, OAPI, the Gulf (GCC).
DOMESTIC_OFFICE = "CN"
REGIONAL_OFFICES = frozenset({"EP", "EA", "AP", "OA", "GC"})
FOREIGN_OFFICES = frozenset(c.alpha_2 for c in pycountry.countries) - {DOMESTIC_OFFICE} | REGIONAL_OFFICES
INTERNATIONAL_BUREAU = "WO"  # WIPO: where a PCT application is published, not an office that grants


@dataclass(frozen=True)
class ApplicationInput:
    """A well-formed application, normalised: dates as date, amounts as int fen."""

    program: str
    year: int
    applicant_id: str
    applicant_name: str
    applicant_kind: str
    registered_in_shanghai: bool
    subject: str
    requested_amount_fen: int | None
    facts: dict[str, Any]
    subject_key: str  # the subject as compared (shared.kernel.subjects): overlap key and per-subject pools

    def facts_to_wire(self, catalog: Catalog | None = None) -> dict[str, Any]:
        program = (catalog or load_catalog()).programs[self.program]
        return _facts_to_wire(self.facts, program)

    def to_wire(self, catalog: Catalog | None = None) -> dict[str, Any]:
        """The application body again, normalised (amounts as two-decimal strings, ISO dates)."""
        body: dict[str, Any] = {
            "program": self.program,
            "year": self.year,
            "applicant": {
                "id": self.applicant_id,
                "name": self.applicant_name,
                "kind": self.applicant_kind,
                "registered_in_shanghai": self.registered_in_shanghai,
            },
            "subject": self.subject,
            "facts": self.facts_to_wire(catalog),
        }
        if self.requested_amount_fen is not None:
            body["requested_amount"] = format_fen(self.requested_amount_fen)
        return body

    @classmethod
    def from_wire(cls, data: dict[str, Any], catalog: Catalog | None = None) -> ApplicationInput:
        """Parse a wire body (as produced by to_wire) back; ValueError when it does not validate."""
        app, errors = validate_application(data, catalog or load_catalog())
        if app is None:
            raise ValueError("; ".join(f"{e.field}: {e.message}" for e in errors))
        return app


def _facts_to_wire(facts: dict[str, Any], program: Program) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in facts.items():
        spec = program.facts[name]
        if spec.type == "amount":
            out[name] = format_fen(value)
        elif spec.type == "date":
            out[name] = value.isoformat()
        elif spec.type == "patents":
            out[name] = [
                {
                    "country": p["country"],
                    "official_fees": format_fen(p["official_fees_fen"]),
                    "granted_after_substantive_examination": p["granted_after_substantive_examination"],
                }
                for p in value
            ]
        else:
            out[name] = value
    return out


def validate_application(body: object, catalog: Catalog) -> tuple[ApplicationInput | None, list[FieldProblem]]:
    """Check every field at once; (input, []) when well-formed, (None, errors) otherwise."""
    errors: list[FieldProblem] = []

    def err(fld: str, message: str) -> None:
        errors.append(FieldProblem(fld, message))

    if not isinstance(body, dict):
        return None, [FieldProblem("body", "must be a JSON object")]
    for key in sorted(set(body) - _TOP_KEYS, key=str):
        err(str(key), "unknown field")

    program: Program | None = None
    code = body.get("program")
    if "program" not in body:
        err("program", "required")
    elif not isinstance(code, str):
        err("program", "must be a string")
    elif code not in catalog.programs:
        err("program", f"unknown program {code!r}; see GET /v1/programs")
    else:
        program = catalog.programs[code]

    year = body.get("year")
    if "year" not in body:
        err("year", "required")
    elif not isinstance(year, int) or isinstance(year, bool):
        err("year", "must be an integer")
    elif not YEAR_MIN <= year <= YEAR_MAX:
        err("year", f"must be between {YEAR_MIN} and {YEAR_MAX}")

    applicant = _applicant(body, err)
    subject = _text(body, "subject", "subject", err)
    key = _subject_key(subject, err)
    if subject is not None and program is not None and program.subject is not None:
        if not _registry_number(subject, program, err):
            key = None

    requested: int | None = None
    raw_requested = body.get("requested_amount")
    if raw_requested is not None:
        try:
            requested = parse_amount(raw_requested)
        except AmountError as exc:
            err("requested_amount", str(exc))

    facts: dict[str, Any] = {}
    raw_facts = body.get("facts")
    if "facts" not in body:
        err("facts", "required")
    elif not isinstance(raw_facts, dict):
        err("facts", "must be an object")
    elif program is not None:
        facts = _facts(raw_facts, program, err)
        if raw_requested is None and program.requested.is_required(raw_facts):
            err("requested_amount", f"required for {program.code} ({program.citation})")

    if errors or program is None or applicant is None or subject is None or key is None:
        return None, errors
    assert isinstance(year, int)
    return ApplicationInput(
        program=program.code,
        year=year,
        applicant_id=applicant[0],
        applicant_name=applicant[1],
        applicant_kind=applicant[2],
        registered_in_shanghai=applicant[3],
        subject=subject,
        requested_amount_fen=requested,
        facts=facts,
        subject_key=key,
    ), []


def _registry_number(subject: str, program: Program, err: Any) -> bool:
    """Where a registry number identifies what is funded, the subject is that number (POLICY.md,
    "Subjects"): compared in NFKC, trimmed, upper case, so full-width or lower-case forms pass."""
    spec = program.subject
    assert spec is not None
    if spec.format.pattern.match(unicodedata.normalize("NFKC", subject).strip().upper()):
        return True
    err("subject", f"{program.code}'s subject must be {spec.format.description} ({spec.citation})")
    return False


def _subject_key(subject: str | None, err: Any) -> str | None:
    if subject is None:
        return None
    try:
        return subject_key(subject)
    except SubjectRefused as exc:
        err("subject", str(exc))
        return None


def _text(container: dict[str, Any], key: str, fld: str, err: Any) -> str | None:
    if key not in container:
        err(fld, "required")
        return None
    value = container[key]
    if not isinstance(value, str):
        err(fld, "must be a string")
        return None
    if not value.strip():
        err(fld, "must not be empty")
        return None
    if "\x00" in value:  # PostgreSQL text and jsonb refuse NUL: an error, not a silent change
        err(fld, "must not contain NUL characters")
        return None
    if len(value) > TEXT_MAX:
        err(fld, f"must be at most {TEXT_MAX} characters")
        return None
    return value


def _applicant(body: dict[str, Any], err: Any) -> tuple[str, str, str, bool] | None:
    if "applicant" not in body:
        err("applicant", "required")
        return None
    raw = body["applicant"]
    if not isinstance(raw, dict):
        err("applicant", "must be an object")
        return None
    ok = True
    for key in sorted(set(raw) - _APPLICANT_KEYS, key=str):
        err(f"applicant.{key}", "unknown field")
        ok = False
    uscc = raw.get("id")
    if "id" not in raw:
        err("applicant.id", "required")
        ok = False
    else:
        problem = uscc_problem(uscc)
        if problem:
            err("applicant.id", f"not a valid unified social credit code: {problem}")
            ok = False
    name = _text(raw, "name", "applicant.name", err)
    kind = raw.get("kind")
    if "kind" not in raw:
        err("applicant.kind", "required")
        ok = False
    elif not isinstance(kind, str) or kind not in APPLICANT_KINDS:
        err("applicant.kind", f"must be one of {', '.join(sorted(APPLICANT_KINDS))}")
        ok = False
    registered = raw.get("registered_in_shanghai")
    if "registered_in_shanghai" not in raw:
        err("applicant.registered_in_shanghai", "required")
        ok = False
    elif not isinstance(registered, bool):
        err("applicant.registered_in_shanghai", "must be true or false")
        ok = False
    if not ok or name is None:
        return None
    assert isinstance(uscc, str) and isinstance(kind, str) and isinstance(registered, bool)
    return uscc, name, kind, registered


def _facts(raw: dict[str, Any], program: Program, err: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(set(raw) - set(program.facts), key=str):
        err(f"facts.{key}", f"unknown fact for {program.code}")
    for name, spec in program.facts.items():
        fld = f"facts.{name}"
        if name not in raw or raw[name] is None:
            if spec.is_required(raw):
                err(
                    fld,
                    "required"
                    + (
                        f" when {spec.required_when.fact} is {spec.required_when.equals!r}"
                        if spec.required_when and not spec.required
                        else ""
                    ),
                )
            continue
        value = _fact_value(raw[name], spec, fld, err)
        if value is not None:
            out[name] = value
    return out


def _fact_value(value: object, spec: FactSpec, fld: str, err: Any) -> Any:
    t = spec.type
    if t == "bool":
        if not isinstance(value, bool):
            err(fld, "must be true or false")
            return None
        return value
    if t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            err(fld, "must be an integer")
            return None
        if spec.min is not None and value < spec.min:
            err(fld, f"must be at least {spec.min}")
            return None
        return value
    if t == "amount":
        try:
            return parse_amount(value)
        except AmountError as exc:
            err(fld, str(exc))
            return None
    if t == "date":
        return _date_value(value, fld, err)
    if t == "enum":
        if not isinstance(value, str) or value not in spec.values:
            err(fld, f"must be one of {', '.join(spec.values)}")
            return None
        return value
    if t == "uscc":
        problem = uscc_problem(value)
        if problem:
            err(fld, f"not a valid unified social credit code: {problem}")
            return None
        return value
    if t == "patents":
        return _patents(value, fld, err)
    raise AssertionError(f"unhandled fact type {t}")  # the catalog loader admits no other type


def _date_value(value: object, fld: str, err: Any) -> date | None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        err(fld, 'must be an ISO date such as "2024-03-18"')
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err(fld, f"{value!r} is not a calendar date")
        return None


def _office_problem(country: object) -> str | None:
    """None for a foreign office that grants patents; what is wrong otherwise (000 §五(三))."""
    if country in FOREIGN_OFFICES:
        return None
    if country == DOMESTIC_OFFICE:
        return "CN is the domestic office: only patents granted abroad count (000 §五(三) 向国外申请)"
    if country == INTERNATIONAL_BUREAU:
        return "WO is the International Bureau, which grants nothing: name the office that granted (000 §五(三))"
    return ('must be the granting office: an ISO 3166-1 alpha-2 country code other than CN, such as "US", '
            "or a regional office (EP, EA, AP, OA, GC)")


def _patents(value: object, fld: str, err: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        err(fld, "must be a list of patents")
        return None
    if not value:
        err(fld, "must list at least one patent")
        return None
    if len(value) > PATENTS_MAX:
        err(fld, f"must list at most {PATENTS_MAX} patents")
        return None
    out: list[dict[str, Any]] = []
    ok = True
    for i, item in enumerate(value):
        at = f"{fld}[{i}]"
        if not isinstance(item, dict):
            err(at, "must be an object")
            ok = False
            continue
        for key in sorted(set(item) - _PATENT_KEYS, key=str):
            err(f"{at}.{key}", "unknown field")
            ok = False
        country = item.get("country")
        if "country" not in item:
            err(f"{at}.country", "required")
            ok = False
        elif (problem := _office_problem(country)) is not None:
            err(f"{at}.country", problem)
            ok = False
        fees = None
        if "official_fees" not in item:
            err(f"{at}.official_fees", "required")
            ok = False
        else:
            try:
                fees = parse_amount(item["official_fees"])
            except AmountError as exc:
                err(f"{at}.official_fees", str(exc))
                ok = False
        granted = item.get("granted_after_substantive_examination")
        if "granted_after_substantive_examination" not in item:
            err(f"{at}.granted_after_substantive_examination", "required")
            ok = False
        elif not isinstance(granted, bool):
            err(f"{at}.granted_after_substantive_examination", "must be true or false")
            ok = False
        if ok:
            out.append(
                {
                    "country": country,
                    "official_fees_fen": fees,
                    "granted_after_substantive_examination": granted,
                }
            )
    return out if ok else None
