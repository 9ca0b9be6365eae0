"""The catalog: strict schema, content per POLICY.md and the seeds, version, public listing."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from shared.policy.catalog import (
    CATALOG_PATH,
    CatalogError,
    FormulaSwitch,
    catalog_from_document,
    catalog_version_of,
    compiled_catalog,
    load_catalog,
    load_catalog_file,
    parse_catalog,
)
from shared.policy.catalog_document import CatalogDocument, document_problems

CODES = ["GT-CLIN", "GT-PCT", "GT-PRODUCT", "GT-INSURANCE", "GT-EQUITY", "CT-PRODUCT", "CT-INSURANCE",
         "BIO-INNOV-DRUG", "BIO-IMPROVED-DRUG", "BIO-DEVICE", "BIO-OVERSEAS", "BIO-CHAIN", "BIO-DIGITAL",
         "BIO-UPGRADE", "BIO-CDMO", "BIO-FIRST-UNIT"]
WAN = 10_000 * 100  # fen
YI = 10_000 * WAN


def raw() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


def program_raw(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(p for p in data["programs"] if p["code"] == code)


def test_all_sixteen_programs() -> None:
    assert list(load_catalog().programs) == CODES


def test_load_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_version_is_sha256_of_canonical_json() -> None:
    data = raw()
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert load_catalog().version == "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert parse_catalog(raw()).version == load_catalog().version
    changed = raw()
    program_raw(changed, "GT-EQUITY")["rules"][0]["min"] = "50000000.01"
    assert parse_catalog(changed).version != load_catalog().version


def test_load_catalog_file(tmp_path: Any) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw(), ensure_ascii=False), encoding="utf-8")
    assert load_catalog_file(path).version == load_catalog().version
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog_file(path)


def _step(target: Any, key: Any) -> Any:
    if isinstance(target, list) and isinstance(key, str):  # a program by its code
        return next(p for p in target if p["code"] == key)
    return target[key]


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = _step(target, key)
        target[path[-1]] = value
    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = _step(target, key)
        del target[path[-1]]
    return mutate


def _required_false_on_amount(data: dict[str, Any]) -> None:
    rule = program_raw(data, "BIO-CDMO")["rules"][0]
    rule["fact"], rule["rule"] = "first_contract_amount", "required_false.first_contract_amount"


def _append_duplicate(data: dict[str, Any]) -> None:
    data["programs"].append(copy.deepcopy(data["programs"][0]))


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("unknown-top-level-key", _set(["colour"], "red")),
    ("unknown-program-key", _set(["programs", "GT-EQUITY", "cap"], "10000000.00")),
    ("misplaced-key-maximum-on-program", _set(["programs", "GT-EQUITY", "maximum"], "10000000.00")),
    ("unknown-window-key", _set(["programs", "GT-EQUITY", "window", "timezone"], "Asia/Shanghai")),
    ("unknown-fact-key", _set(["programs", "GT-EQUITY", "facts", "financing_received", "default"], "0.00")),
    ("unknown-formula-key", _set(["programs", "GT-EQUITY", "formula", "rounding"], "down")),
    ("unknown-case-formula-key", _set(["programs", "BIO-INNOV-DRUG", "formula", "cases", "I", "x"], 1)),
    ("unknown-rule-key", _set(["programs", "GT-EQUITY", "rules", 0, "severity"], "high")),
    ("unknown-pool-key", _set(["programs", "GT-EQUITY", "pools", 0, "currency"], "CNY")),
    ("unknown-common-key", _set(["common", "registered_in_shanghai", "note"], "x")),
    ("missing-citation", _delete(["programs", "GT-EQUITY", "citation"])),
    ("missing-rule-citation", _delete(["programs", "GT-EQUITY", "rules", 0, "citation"])),
    ("empty-citation", _set(["programs", "GT-EQUITY", "formula", "citation"], "")),
    ("missing-pool-cap", _delete(["programs", "GT-EQUITY", "pools", 0, "cap"])),
    ("cap-three-decimals", _set(["programs", "GT-EQUITY", "pools", 0, "cap"], "1.001")),
    ("cap-as-number", _set(["programs", "GT-EQUITY", "pools", 0, "cap"], 10000000)),
    ("rate-as-float", _set(["programs", "GT-EQUITY", "formula", "rate_bp"], 2.0)),
    ("rate-over-100-percent", _set(["programs", "GT-EQUITY", "formula", "rate_bp"], 10001)),
    ("unknown-formula-kind", _set(["programs", "GT-EQUITY", "formula", "kind"], "lottery")),
    ("base-fact-not-amount", _set(["programs", "GT-EQUITY", "formula", "base_fact"], "event_date")),
    ("base-fact-missing", _set(["programs", "GT-EQUITY", "formula", "base_fact"], "valuation")),
    ("unknown-fact-type", _set(["programs", "GT-EQUITY", "facts", "financing_received", "type"], "money")),
    ("enum-without-values", _delete(["programs", "BIO-INNOV-DRUG", "facts", "phase", "values"])),
    ("values-on-non-enum", _set(["programs", "GT-EQUITY", "facts", "financing_received", "values"], ["a"])),
    ("switch-missing-case", _delete(["programs", "BIO-INNOV-DRUG", "formula", "cases", "III"])),
    ("switch-extra-case", _set(["programs", "BIO-INNOV-DRUG", "formula", "cases", "IV"],
                               {"kind": "requested", "maximum": "1.00", "citation": "x", "text": "x"})),
    ("unknown-pool-scope", _set(["programs", "GT-EQUITY", "pools", 0, "scope"], "lifetime")),
    ("pool-name-mismatch", _set(["programs", "GT-EQUITY", "pools", 0, "name"], "GT-CLIN/beneficiary-year")),
    ("unknown-rule-kind", _set(["programs", "GT-EQUITY", "rules", 0, "kind"], "maximum")),
    ("required-false-on-amount", _required_false_on_amount),
    ("threshold-without-min", _delete(["programs", "GT-EQUITY", "rules", 0, "min"])),
    ("unknown-applicant-kind", _set(["programs", "GT-EQUITY", "applicant_kinds", "allowed"], ["individual"])),
    ("window-end-before-start", _set(["programs", "GT-EQUITY", "window", "event_date", "end"], "2020-01-01")),
    ("window-impossible-date", _set(["programs", "GT-EQUITY", "window", "event_date", "end"], "2025-02-30")),
    ("milestone-unknown-fact", _set(["programs", "BIO-INNOV-DRUG", "milestone"], "phase_<stage>")),
    ("no-event-date", _delete(["programs", "GT-EQUITY", "facts", "event_date"])),
    ("condition-on-unknown-fact", _set(["programs", "BIO-DEVICE", "requested_amount", "required_when", "fact"],
                                       "colour")),
    ("bool-required-as-string", _set(["programs", "GT-EQUITY", "facts", "financing_received", "required"], "yes")),
    ("programs-empty", _set(["programs"], [])),
    ("duplicate-program", _append_duplicate),
]


@pytest.mark.parametrize("mutate", [b[1] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_schema_violations_raise_catalog_error(mutate: Callable[[dict[str, Any]], None]) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(CatalogError):
        parse_catalog(data)


def test_unknown_key_raises_catalog_error_naming_it() -> None:
    data = raw()
    program_raw(data, "GT-EQUITY")["formula"]["cap"] = "1.00"
    with pytest.raises(CatalogError, match=r"GT-EQUITY.*unknown key\(s\) cap"):
        parse_catalog(data)


def test_not_an_object() -> None:
    with pytest.raises(CatalogError):
        parse_catalog([])


SEED_OF = {"000": "000_5a546d6e7b07b865.txt", "001": "001_83816eb1af4f4386.txt", "002": "002_3d6e404cec9cf21f.txt"}
_CITATION = re.compile(r"^00[0-4] ")


def _citations(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["citation"]] if "citation" in node else []
        return found + [c for v in node.values() for c in _citations(v)]
    if isinstance(node, list):
        return [c for v in node for c in _citations(v)]
    return []


@pytest.mark.parametrize("code", CODES)
def test_every_rule_carries_a_seed_citation(code: str) -> None:
    program = load_catalog().programs[code]
    assert program.source == SEED_OF[program.citation[:3]]
    citations = _citations(dict(program.raw))
    assert len(citations) >= 4  # program, window, applicant kinds, formula at least
    for citation in citations:
        assert _CITATION.match(citation), citation


def test_registered_in_shanghai_is_required_everywhere_002_1_3() -> None:
    assert load_catalog().registered_citation == "002 §一(三)"


def test_program_citations_match_policy() -> None:
    expected = {
        "GT-CLIN": "000 §四(二)5", "GT-PCT": "000 §五(三)", "GT-PRODUCT": "000 §五(四)",
        "GT-INSURANCE": "000 §五(五); 004 §一.六", "GT-EQUITY": "000 §五(六)", "CT-PRODUCT": "001 §四(四)11",
        "CT-INSURANCE": "001 §四(四)11; 004 §一.六", "BIO-INNOV-DRUG": "002 §三(一)",
        "BIO-IMPROVED-DRUG": "002 §三(二)", "BIO-DEVICE": "002 §三(三)", "BIO-OVERSEAS": "002 §三(五); 003 §一.3",
        "BIO-CHAIN": "002 §五(一)", "BIO-DIGITAL": "002 §五(二)", "BIO-UPGRADE": "002 §五(二)",
        "BIO-CDMO": "002 §五(三)", "BIO-FIRST-UNIT": "002 §六(二)",
    }
    assert {c: p.citation for c, p in load_catalog().programs.items()} == expected


def _maxima(code: str) -> dict[str, int | None]:
    formula = load_catalog().programs[code].formula
    if isinstance(formula, FormulaSwitch):
        return {k: f.maximum_fen for k, f in formula.cases.items()}
    return {"": formula.maximum_fen}


MAXIMA = [
    ("000-4.2.5", "GT-CLIN", {"": 50 * WAN}),
    ("000-5.3", "GT-PCT", {"": 10 * WAN}),
    ("000-5.4", "GT-PRODUCT", {"": 3000 * WAN}),
    ("000-5.5", "GT-INSURANCE", {"": 50 * WAN}),
    # 不超过2%: no maximum per award; 每个企业每年不超过1000万元 is the beneficiary-year pool (issue 12).
    ("000-5.6", "GT-EQUITY", {"": None}),
    ("001-4.4.11", "CT-PRODUCT", {"": 3000 * WAN}),
    ("001-4.4.11", "CT-INSURANCE", {"": 50 * WAN}),
    ("002-3.1", "BIO-INNOV-DRUG", {"I": 500 * WAN, "II": 1000 * WAN, "III": 3000 * WAN}),
    ("002-3.2", "BIO-IMPROVED-DRUG", {"II": 500 * WAN, "III": 1000 * WAN}),
    ("002-3.3", "BIO-DEVICE", {"special_review": 200 * WAN, "first_registration": 500 * WAN}),
    ("002-3.5", "BIO-OVERSEAS", {"": 1000 * WAN}),
    ("002-5.1", "BIO-CHAIN", {"false": 1500 * WAN, "true": YI}),
    ("002-5.2", "BIO-DIGITAL", {"": 1000 * WAN}),
    ("002-5.2", "BIO-UPGRADE", {"": 5000 * WAN}),
    ("002-5.3", "BIO-CDMO", {"": 500 * WAN}),
    ("002-6.2", "BIO-FIRST-UNIT", {"device": 3000 * WAN, "material": 300 * WAN}),
]


@pytest.mark.parametrize(("code", "maxima"), [m[1:] for m in MAXIMA], ids=[f"{m[0]}-{m[1]}" for m in MAXIMA])
def test_per_award_maxima(code: str, maxima: dict[str, int | None]) -> None:
    assert _maxima(code) == maxima


def test_three_one_yi_pools_are_separate() -> None:
    # POLICY.md "Interpretations": one 1亿 pool per document/program, never shared.
    pools = [(p.name, p.cap_fen) for prog in load_catalog().programs.values() for p in prog.pools
             if p.cap_fen == YI]
    assert pools == [("GT-PRODUCT/beneficiary-year", YI), ("CT-PRODUCT/beneficiary-year", YI),
                     ("BIO-INNOV-DRUG/beneficiary-year", YI)]


def test_threshold_is_inclusive_000_5_6() -> None:
    rule = load_catalog().programs["GT-EQUITY"].rules[0]
    assert (rule.rule, rule.min_fen, rule.inclusive) == ("threshold.financing_received", 5000 * WAN, True)


def test_required_booleans() -> None:
    catalog = load_catalog()
    found = {code: [(r.kind, r.fact) for r in p.rules if r.kind in ("required_true", "required_false")]
             for code, p in catalog.programs.items()}
    assert found["GT-CLIN"] == [("required_true", "research_completed")]
    assert found["GT-PRODUCT"] == [("required_true", "domestic_clinical_trial"),
                                   ("required_true", "marketing_authorization"),
                                   ("required_true", "manufactured_in_shanghai")]
    assert found["BIO-INNOV-DRUG"] == [("required_true", "licensed_applicant"),
                                       ("required_true", "manufactured_in_shanghai")]
    assert found["BIO-CDMO"] == [("required_false", "investment_relation")]
    assert found["BIO-OVERSEAS"] == [("required_true", "overseas_sales")]


def test_public_listing() -> None:
    listing = load_catalog().public_listing()
    json.dumps(listing, ensure_ascii=False)  # serialisable as is
    assert [p["code"] for p in listing] == CODES
    by_code = {p["code"]: p for p in listing}
    equity = by_code["GT-EQUITY"]
    assert set(equity) >= {"code", "name", "source", "citation", "window", "facts", "formula", "max_per_award",
                           "caps", "requested_amount", "applicant_kinds", "milestone"}
    assert equity["name"] == {"zh": "基因治疗企业股权融资资助", "en": "Gene therapy enterprise equity financing"}
    assert equity["window"]["event_date"] == {"start": "2023-08-31", "end": "2025-12-31"}
    assert equity["window"]["years"] == {"first": 2023, "last": 2025}
    assert equity["max_per_award"] is None  # the 1000万 a year is a cap (a pool), not a maximum per award
    assert equity["caps"][0]["name"] == "GT-EQUITY/beneficiary-year"
    assert equity["caps"][0]["cap"] == "10000000.00"
    assert {f["name"]: f["type"] for f in equity["facts"]} == {"event_date": "date", "financing_received": "amount"}
    drug = by_code["BIO-INNOV-DRUG"]
    assert drug["max_per_award"] == {"by_fact": "phase", "values": {"I": "5000000.00", "II": "10000000.00",
                                                                     "III": "30000000.00"}}
    phase = next(f for f in drug["facts"] if f["name"] == "phase")
    assert phase["values"] == ["I", "II", "III"]
    assert by_code["GT-PRODUCT"]["requested_amount"] == {"required": True}
    assert by_code["BIO-DEVICE"]["requested_amount"]["required_when"] == {"fact": "stage", "equals": "special_review"}


# The path and message of each fault, as the loader has always said them (the document models
# keep them: an admin's catalog version is refused with these, one per bad path).
MESSAGES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("unknown-program-key", _set(["programs", "GT-EQUITY", "cap"], "1.00"), ["$.programs[4]: unknown key(s) cap"]),
    ("missing-rule-citation", _delete(["programs", "GT-EQUITY", "rules", 0, "citation"]),
     ["$.programs[GT-EQUITY].rules[0]: missing key(s) citation"]),
    ("blank-citation", _set(["programs", "GT-EQUITY", "formula", "citation"], " "),
     ["$.programs[GT-EQUITY].formula.citation: must be a non-empty string"]),
    ("cap-three-decimals", _set(["programs", "GT-EQUITY", "pools", 0, "cap"], "1.001"),
     ["$.programs[GT-EQUITY].pools[0].cap: must have at most two decimal places"]),
    ("cap-as-number", _set(["programs", "GT-EQUITY", "pools", 0, "cap"], 10000000),
     ['$.programs[GT-EQUITY].pools[0].cap: must be a decimal string such as "1600000.00"']),
    ("rate-as-float", _set(["programs", "GT-EQUITY", "formula", "rate_bp"], 2.0),
     ["$.programs[GT-EQUITY].formula.rate_bp: must be an integer"]),
    ("rate-over-100-percent", _set(["programs", "GT-EQUITY", "formula", "rate_bp"], 10001),
     ["$.programs[GT-EQUITY].formula.rate_bp: out of range"]),
    ("revision-zero", _set(["revision"], 0), ["$.revision: out of range"]),
    ("bool-required-as-string", _set(["programs", "GT-EQUITY", "facts", "financing_received", "required"], "yes"),
     ["$.programs[GT-EQUITY].facts.financing_received.required: must be true or false"]),
    ("window-impossible-date", _set(["programs", "GT-EQUITY", "window", "event_date", "end"], "2025-02-30"),
     ["$.programs[GT-EQUITY].window.event_date.end: day is out of range for month"]),
    ("window-years-reversed", _set(["programs", "GT-EQUITY", "window", "years", "last"], 2022),
     ["$.programs[GT-EQUITY].window.years.last: out of range"]),
    ("unknown-formula-kind", _set(["programs", "GT-EQUITY", "formula", "kind"], "lottery"),
     ["$.programs[GT-EQUITY].formula.kind: unknown formula kind 'lottery'"]),
    ("formula-kind-changed", _set(["programs", "GT-EQUITY", "formula", "kind"], "per_unit"),
     ["$.programs[GT-EQUITY].formula: unknown key(s) base_fact, rate_bp",
      "$.programs[GT-EQUITY].formula: missing key(s) count_fact, unit_amount"]),
    ("case-formula-rate", _set(["programs", "BIO-INNOV-DRUG", "formula", "cases", "I", "rate_bp"], -1),
     ["$.programs[BIO-INNOV-DRUG].formula.cases.I.rate_bp: out of range"]),
    ("switch-extra-case-not-a-formula", _set(["programs", "BIO-INNOV-DRUG", "formula", "cases", "IV"], 1),
     ["$.programs[BIO-INNOV-DRUG].formula.cases: unknown key(s) IV"]),
    ("values-on-non-enum", _set(["programs", "GT-EQUITY", "facts", "financing_received", "values"], 5),
     ["$.programs[GT-EQUITY].facts.financing_received.values: only enum facts have values"]),
    ("optional-min-as-null", _set(["programs", "GT-CLIN", "facts", "enrolled_subjects", "min"], None),
     ["$.programs[GT-CLIN].facts.enrolled_subjects.min: must be an integer"]),
    ("optional-when-as-null", _set(["programs", "BIO-DEVICE", "rules", 0, "when"], None),
     ["$.programs[BIO-DEVICE].rules[0].when: must be an object"]),
    ("rule-kind-changed", _set(["programs", "GT-EQUITY", "rules", 0, "kind"], "required_true"),
     ["$.programs[GT-EQUITY].rules[0].rule: must be required_true.financing_received"]),
    ("rule-on-optional-fact-without-its-condition", _delete(["programs", "BIO-DEVICE", "rules", 0, "when"]),
     ["$.programs[BIO-DEVICE].rules[0]: a rule on an optional fact must carry the same condition as the fact"]),
    ("formula-fact-not-always-given",
     _set(["programs", "BIO-CHAIN", "facts", "approved_new_investment", "required_when", "equals"], True),
     ["$.programs[BIO-CHAIN].formula.cases.false.base_fact: "
      "'approved_new_investment' is not required whenever this formula applies"]),
    ("unknown-applicant-kind", _set(["programs", "GT-EQUITY", "applicant_kinds", "allowed"], ["enterprise", "x"]),
     ["$.programs[GT-EQUITY].applicant_kinds.allowed: unknown applicant kind 'x'"]),
    ("lower-case-code", _set(["programs", "GT-EQUITY", "code"], "gt-equity"),
     ["$.programs[4].code: 'gt-equity' is not an upper-case program code"]),
    ("fact-name", _set(["programs", "GT-EQUITY", "facts", "Financing"], {"type": "bool", "required": True,
                                                                          "description": "x"}),
     ["$.programs[GT-EQUITY].facts.Financing: fact names are snake_case"]),
    ("milestone-unknown-fact", _set(["programs", "BIO-INNOV-DRUG", "milestone"], "phase_<stage>"),
     ["$.programs[BIO-INNOV-DRUG].milestone: <stage> must name a required enum or bool fact"]),
    ("programs-empty", _set(["programs"], []), ["$.programs: must be a non-empty list"]),
    ("duplicate-program", _append_duplicate, ["$.programs[16].code: duplicate program GT-CLIN"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_schema_violation_names_its_path(mutate: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    assert [f"{path}: {message}" for path, message in caught.value.errors] == expected
    assert str(caught.value) == "\n".join(expected)


def test_every_bad_path_is_named() -> None:
    data = raw()
    data["revision"] = 0
    program_raw(data, "GT-CLIN")["window"]["timezone"] = "Asia/Shanghai"
    equity = program_raw(data, "GT-EQUITY")
    del equity["rules"][0]["inclusive"]
    equity["formula"]["rate_bp"] = 10001
    equity["pools"][0]["cap"] = "1.001"
    program_raw(data, "BIO-DEVICE")["facts"]["stage"]["values"] = ["special_review"]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    not_a_stage = "'first_registration' is not a value of stage"
    assert caught.value.errors == (
        ("$.revision", "out of range"),
        ("$.programs[GT-CLIN].window", "unknown key(s) timezone"),
        ("$.programs[GT-EQUITY].rules[0]", "a threshold needs min and inclusive"),
        ("$.programs[GT-EQUITY].formula.rate_bp", "out of range"),
        ("$.programs[GT-EQUITY].pools[0].cap", "must have at most two decimal places"),
        ("$.programs[BIO-DEVICE].facts.entered_special_review.required_when.equals", not_a_stage),
        ("$.programs[BIO-DEVICE].facts.rd_investment.required_when.equals", not_a_stage),
        ("$.programs[BIO-DEVICE].facts.manufactured_in_shanghai.required_when.equals", not_a_stage),
        ("$.programs[BIO-DEVICE].rules[0].when.equals", not_a_stage),
        ("$.programs[BIO-DEVICE].rules[1].when.equals", not_a_stage),
        ("$.programs[BIO-DEVICE].formula.cases", "unknown key(s) first_registration"),
    )


def test_unreadable_file_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}: Expecting property name"):
        load_catalog_file(path)


def test_document_schema_has_amounts_as_strings_and_no_other_keys() -> None:
    schema = CatalogDocument.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["PoolDocument"]["properties"]["cap"]["type"] == "string"
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())


# --- Versions as the API publishes them (CONTRACT.md, "Policy administration")


def test_catalog_version_of_is_the_content_address() -> None:
    data = raw()
    assert catalog_version_of(data) == load_catalog().version
    reordered = dict(reversed(list(data.items())))
    assert catalog_version_of(reordered) == load_catalog().version


def test_catalog_from_document_compiles_once_per_version() -> None:
    assert catalog_from_document(raw()) is load_catalog()
    changed = raw()
    program_raw(changed, "GT-EQUITY")["window"]["event_date"]["end"] = "2026-12-31"
    first = catalog_from_document(changed)
    assert first.version == catalog_version_of(changed) != load_catalog().version
    assert first.programs["GT-EQUITY"].window.end.isoformat() == "2026-12-31"
    assert catalog_from_document(copy.deepcopy(changed)) is first
    assert compiled_catalog(first.version) is first
    assert compiled_catalog(load_catalog().version) is load_catalog()
    assert compiled_catalog("sha256:" + "0" * 64) is None


def test_catalog_from_document_refuses_a_bad_one() -> None:
    data = raw()
    program_raw(data, "GT-EQUITY")["formula"]["rate_bp"] = 10001
    with pytest.raises(CatalogError, match=r"\$\.programs\[GT-EQUITY\]\.formula\.rate_bp: out of range"):
        catalog_from_document(data)


def test_document_problems_name_paths_as_the_api_does() -> None:
    assert document_problems(raw()) == []
    data = raw()
    data["revision"] = 0
    equity = program_raw(data, "GT-EQUITY")
    equity["formula"]["rate_bp"] = 10001
    equity["cap"] = "1.00"
    program_raw(data, "BIO-INNOV-DRUG")["formula"]["cases"]["I"]["rate_bp"] = -1
    assert document_problems(data) == [
        ("document.revision", "out of range"),
        ("document.programs[4].formula.rate_bp", "out of range"),
        ("document.programs[4]", "unknown key(s) cap"),
        ("document.programs[7].formula.cases.I.rate_bp", "out of range"),
    ]


@pytest.mark.parametrize("document", [[], "catalog", None, 7])
def test_document_problems_of_a_non_object(document: object) -> None:
    assert document_problems(document) == [("document", "must be an object")]


@pytest.mark.parametrize("mutate", [m[1] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_document_problems_match_the_loaders_errors(mutate: Callable[[dict[str, Any]], None]) -> None:
    # One validation, two spellings of its paths: "$.programs[GT-EQUITY]" and "document.programs[4]".
    data = raw()
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    problems = document_problems(data)
    assert [message for _, message in problems] == [message for _, message in caught.value.errors]
    for (api_path, _), (path, _) in zip(problems, caught.value.errors, strict=True):
        assert api_path.startswith("document") and not re.search(r"programs\[[A-Z]", api_path)
        assert re.sub(r"programs\[[^\]]+\]", "programs[]", api_path.replace("document", "$", 1)) == re.sub(
            r"programs\[[^\]]+\]", "programs[]", path)


# --- Review mode (POLICY.md, "Review mode"; CONTRACT.md, "Review")

REVIEW = {
    # 择优, 经评选认定, 核定 or a requested amount: a reviewer sets what is granted.
    "GT-CLIN": "required", "GT-PRODUCT": "required", "CT-PRODUCT": "required", "BIO-INNOV-DRUG": "required",
    "BIO-IMPROVED-DRUG": "required", "BIO-DEVICE": "required", "BIO-OVERSEAS": "required",
    "BIO-CHAIN": "required", "BIO-DIGITAL": "required", "BIO-UPGRADE": "required",
    # The formula on documented amounts, paid in full.
    "GT-PCT": "auto", "GT-INSURANCE": "auto", "CT-INSURANCE": "auto", "GT-EQUITY": "auto", "BIO-CDMO": "auto",
    "BIO-FIRST-UNIT": "auto",
}


def test_review_modes_are_policys_defaults() -> None:
    assert {code: p.review for code, p in load_catalog().programs.items()} == REVIEW
    assert {p["code"]: p["review"] for p in load_catalog().public_listing()} == REVIEW


def test_an_admin_changes_a_programs_review_mode() -> None:
    data = raw()
    program_raw(data, "GT-EQUITY")["review"] = "required"
    assert parse_catalog(data).programs["GT-EQUITY"].review == "required"


REVIEW_FAULTS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("unknown-mode", _set(["programs", "GT-EQUITY", "review"], "manual"),
     ["$.programs[GT-EQUITY].review: must be required or auto"]),
    ("not-a-string", _set(["programs", "GT-EQUITY", "review"], True),
     ["$.programs[GT-EQUITY].review: must be a non-empty string"]),
    ("missing", _delete(["programs", "GT-EQUITY", "review"]), ["$.programs[4]: missing key(s) review"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in REVIEW_FAULTS], ids=[m[0] for m in REVIEW_FAULTS])
def test_review_mode_faults(mutate: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    assert [f"{path}: {message}" for path, message in caught.value.errors] == expected


# --- Pools shared across programs (POLICY.md, "Interpretations": one name, one pool)


def _share_product_cap(data: dict[str, Any]) -> None:
    """GT-PRODUCT and CT-PRODUCT under one 1亿 per unit and year."""
    for code in ("GT-PRODUCT", "CT-PRODUCT"):
        program_raw(data, code)["pools"][1]["name"] = "PRODUCT/beneficiary-year"


def test_two_programs_naming_one_pool_share_it() -> None:
    data = raw()
    _share_product_cap(data)
    catalog = parse_catalog(data)
    names = {code: [p.name for p in catalog.programs[code].pools] for code in ("GT-PRODUCT", "CT-PRODUCT")}
    assert names == {"GT-PRODUCT": ["GT-PRODUCT/subject", "PRODUCT/beneficiary-year"],
                     "CT-PRODUCT": ["CT-PRODUCT/subject", "PRODUCT/beneficiary-year"]}
    # Another program's own name may be shared too, when it means the same pool.
    data = raw()
    program_raw(data, "CT-PRODUCT")["pools"][1]["name"] = "GT-PRODUCT/beneficiary-year"
    assert parse_catalog(data).programs["CT-PRODUCT"].pools[1].name == "GT-PRODUCT/beneficiary-year"


def _shared_with_another_cap(data: dict[str, Any]) -> None:
    _share_product_cap(data)
    program_raw(data, "CT-PRODUCT")["pools"][1]["cap"] = "50000000.00"


def _twice_in_one_program(data: dict[str, Any]) -> None:
    pools = program_raw(data, "GT-EQUITY")["pools"]
    pools.append(copy.deepcopy(pools[0]))


POOL_FAULTS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("shared-with-another-cap", _shared_with_another_cap,
     # A check across programs names a program by its index, as the duplicate-program check does.
     ["$.programs[5].pools[1].cap: pool PRODUCT/beneficiary-year is shared with GT-PRODUCT: "
      "the same cap is required"]),
    ("shared-with-another-cap-by-its-own-name", _set(["programs", "GT-EQUITY", "pools", 0, "name"],
                                                     "GT-CLIN/beneficiary-year"),
     ["$.programs[4].pools[0].cap: pool GT-CLIN/beneficiary-year is shared with GT-CLIN: "
      "the same cap is required"]),
    ("name-not-its-scope", _set(["programs", "GT-EQUITY", "pools", 0, "name"], "GT-EQUITY/subject"),
     ["$.programs[GT-EQUITY].pools[0].name: must be <CODE>/beneficiary-year (such as GT-EQUITY/beneficiary-year)"]),
    ("name-without-code", _set(["programs", "GT-EQUITY", "pools", 0, "name"], "beneficiary-year"),
     ["$.programs[GT-EQUITY].pools[0].name: must be <CODE>/beneficiary-year (such as GT-EQUITY/beneficiary-year)"]),
    ("call-budget-is-a-calls", _set(["programs", "GT-EQUITY", "pools", 0, "name"], "call-budget"),
     ["$.programs[GT-EQUITY].pools[0].name: must be <CODE>/beneficiary-year (such as GT-EQUITY/beneficiary-year)"]),
    ("twice-in-one-program", _twice_in_one_program,
     ["$.programs[GT-EQUITY].pools[1].name: duplicate pool GT-EQUITY/beneficiary-year"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in POOL_FAULTS], ids=[m[0] for m in POOL_FAULTS])
def test_pool_faults(mutate: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    assert [f"{path}: {message}" for path, message in caught.value.errors] == expected
