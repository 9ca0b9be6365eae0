"""Application validation: every 422 case names its field; eligibility matters are not 422."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shared.kernel.errors import FieldProblem
from shared.kernel.uscc import with_check_character
from shared.policy.catalog import load_catalog
from shared.policy.validation import ApplicationInput, validate_application
from tools.samples import BASE, ENTERPRISE, SPONSOR, make_body


def errors_of(body: object) -> list[FieldProblem]:
    app, errors = validate_application(body, load_catalog())
    assert (app is None) == bool(errors)
    return errors


def fields_of(body: object) -> set[str]:
    return {e.field for e in errors_of(body)}


def bad_uscc() -> str:
    last = ENTERPRISE[-1]
    return ENTERPRISE[:-1] + ("0" if last != "0" else "1")


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


@pytest.mark.parametrize("program", sorted(BASE))
def test_base_bodies_are_valid(program: str) -> None:
    assert errors_of(make_body(program)) == []


# (id, body, the field the error must name)
INVALID: list[tuple[str, Any, str]] = [
    ("body-not-object", ["GT-EQUITY"], "body"),
    ("unknown-top-level-key", {**make_body("GT-EQUITY"), "extra": 1}, "extra"),
    ("missing-program", _without(make_body("GT-EQUITY"), "program"), "program"),
    ("unknown-program", {**make_body("GT-EQUITY"), "program": "GT-NOPE"}, "program"),
    ("program-not-string", {**make_body("GT-EQUITY"), "program": 7}, "program"),
    ("missing-year", _without(make_body("GT-EQUITY"), "year"), "year"),
    ("year-string", make_body("GT-EQUITY", year="2024"), "year"),
    ("year-bool", make_body("GT-EQUITY", year=True), "year"),
    ("year-float", make_body("GT-EQUITY", year=2024.0), "year"),
    ("year-below-2000", make_body("GT-EQUITY", year=1999), "year"),
    ("year-above-2100", make_body("GT-EQUITY", year=2101), "year"),
    ("missing-applicant", _without(make_body("GT-EQUITY"), "applicant"), "applicant"),
    ("applicant-not-object", {**make_body("GT-EQUITY"), "applicant": "x"}, "applicant"),
    ("applicant-unknown-key", make_body("GT-EQUITY", applicant={"phone": "1"}), "applicant.phone"),
    ("uscc-bad-check-character", make_body("GT-EQUITY", applicant={"id": bad_uscc()}), "applicant.id"),
    ("uscc-short", make_body("GT-EQUITY", applicant={"id": "91310115"}), "applicant.id"),
    ("uscc-not-string", make_body("GT-EQUITY", applicant={"id": 913101}), "applicant.id"),
    ("uscc-missing", _without(make_body("GT-EQUITY"), "applicant", "id"), "applicant.id"),
    ("applicant-kind-unknown", make_body("GT-EQUITY", applicant={"kind": "individual"}), "applicant.kind"),
    ("applicant-kind-missing", _without(make_body("GT-EQUITY"), "applicant", "kind"), "applicant.kind"),
    ("applicant-name-empty", make_body("GT-EQUITY", applicant={"name": "  "}), "applicant.name"),
    ("applicant-name-too-long", make_body("GT-EQUITY", applicant={"name": "名" * 201}), "applicant.name"),
    ("applicant-name-not-string", make_body("GT-EQUITY", applicant={"name": 5}), "applicant.name"),
    ("registered-not-bool", make_body("GT-EQUITY", applicant={"registered_in_shanghai": "yes"}),
     "applicant.registered_in_shanghai"),
    ("registered-missing", _without(make_body("GT-EQUITY"), "applicant", "registered_in_shanghai"),
     "applicant.registered_in_shanghai"),
    ("subject-missing", _without(make_body("GT-EQUITY"), "subject"), "subject"),
    ("subject-empty", make_body("GT-EQUITY", subject=""), "subject"),
    ("subject-too-long", make_body("GT-EQUITY", subject="S" * 201), "subject"),
    ("subject-not-string", make_body("GT-EQUITY", subject=12), "subject"),
    ("requested-number", make_body("GT-EQUITY", requested_amount=1600000), "requested_amount"),
    ("requested-negative", make_body("GT-EQUITY", requested_amount="-1.00"), "requested_amount"),
    ("requested-three-decimals", make_body("GT-EQUITY", requested_amount="1.001"), "requested_amount"),
    ("requested-exponent", make_body("GT-EQUITY", requested_amount="1e6"), "requested_amount"),
    ("facts-missing", _without(make_body("GT-EQUITY"), "facts"), "facts"),
    ("facts-not-object", {**make_body("GT-EQUITY"), "facts": [1]}, "facts"),
    ("fact-unknown-key", make_body("GT-EQUITY", {"valuation": "1.00"}), "facts.valuation"),
    ("event-date-missing", make_body("GT-EQUITY", drop=("event_date",)), "facts.event_date"),
    ("event-date-impossible", make_body("GT-EQUITY", {"event_date": "2024-02-30"}), "facts.event_date"),
    ("event-date-month-13", make_body("GT-EQUITY", {"event_date": "2024-13-01"}), "facts.event_date"),
    ("event-date-not-iso", make_body("GT-EQUITY", {"event_date": "18/03/2024"}), "facts.event_date"),
    ("event-date-datetime", make_body("GT-EQUITY", {"event_date": "2024-03-18T00:00:00"}), "facts.event_date"),
    ("event-date-number", make_body("GT-EQUITY", {"event_date": 20240318}), "facts.event_date"),
    ("amount-fact-float", make_body("GT-EQUITY", {"financing_received": 80000000.0}), "facts.financing_received"),
    ("amount-fact-negative", make_body("GT-EQUITY", {"financing_received": "-5.00"}), "facts.financing_received"),
    ("amount-fact-three-decimals", make_body("GT-INSURANCE", {"premium": "100.005"}), "facts.premium"),
    ("amount-fact-missing", make_body("GT-INSURANCE", drop=("premium",)), "facts.premium"),
    ("int-fact-bool", make_body("GT-CLIN", {"enrolled_subjects": True}), "facts.enrolled_subjects"),
    ("int-fact-string", make_body("GT-CLIN", {"enrolled_subjects": "8"}), "facts.enrolled_subjects"),
    ("int-fact-float", make_body("GT-CLIN", {"enrolled_subjects": 8.0}), "facts.enrolled_subjects"),
    ("int-fact-zero", make_body("GT-CLIN", {"enrolled_subjects": 0}), "facts.enrolled_subjects"),
    ("bool-fact-int", make_body("GT-CLIN", {"research_completed": 1}), "facts.research_completed"),
    ("bool-fact-string", make_body("GT-CLIN", {"research_completed": "true"}), "facts.research_completed"),
    ("bool-fact-missing", make_body("GT-PRODUCT", drop=("manufactured_in_shanghai",)),
     "facts.manufactured_in_shanghai"),
    ("enum-not-allowed", make_body("GT-CLIN", {"study_type": "observational"}), "facts.study_type"),
    ("enum-insurance-type-wrong", make_body("GT-INSURANCE", {"insurance_type": "product_liability"}),
     "facts.insurance_type"),
    ("enum-phase-lowercase", make_body("BIO-INNOV-DRUG", {"phase": "i"}), "facts.phase"),
    ("enum-improved-phase-I", make_body("BIO-IMPROVED-DRUG", {"phase_completed": "I"}), "facts.phase_completed"),
    ("enum-agency", make_body("BIO-OVERSEAS", {"agency": "NMPA"}), "facts.agency"),
    ("enum-item", make_body("BIO-FIRST-UNIT", {"item": "software"}), "facts.item"),
    ("sponsor-required-when-sponsored", make_body("GT-CLIN", {"study_type": "sponsored_trial"}), "facts.sponsor_id"),
    ("sponsor-bad-uscc", make_body("GT-CLIN", {"study_type": "sponsored_trial", "sponsor_id": bad_uscc()}),
     "facts.sponsor_id"),
    ("requested-required-gt-product", _without(make_body("GT-PRODUCT"), "requested_amount"), "requested_amount"),
    ("requested-required-ct-product", _without(make_body("CT-PRODUCT"), "requested_amount"), "requested_amount"),
    ("requested-null-gt-product", make_body("GT-PRODUCT", requested_amount=None), "requested_amount"),
    ("requested-required-device-special-review", make_body("BIO-DEVICE", {"stage": "special_review"}),
     "requested_amount"),
    ("rd-required-device-first-registration", make_body("BIO-DEVICE", drop=("rd_investment",)),
     "facts.rd_investment"),
    ("made-in-shanghai-required-device-first-registration",
     make_body("BIO-DEVICE", drop=("manufactured_in_shanghai",)), "facts.manufactured_in_shanghai"),
    ("requested-required-chain-major", make_body("BIO-CHAIN", {"major_project": True}), "requested_amount"),
    ("investment-required-chain-not-major", make_body("BIO-CHAIN", drop=("approved_new_investment",)),
     "facts.approved_new_investment"),
    ("patents-not-list", make_body("GT-PCT", {"patents": {"US": "1.00"}}), "facts.patents"),
    ("patents-empty", make_body("GT-PCT", {"patents": []}), "facts.patents"),
    ("patent-not-object", make_body("GT-PCT", {"patents": ["US"]}), "facts.patents[0]"),
    ("patent-fees-three-decimals", make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "1.005", "granted_after_substantive_examination": True}]}),
     "facts.patents[0].official_fees"),
    ("patent-fees-number", make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "1.00", "granted_after_substantive_examination": True},
        {"country": "EP", "official_fees": 100, "granted_after_substantive_examination": True}]}),
     "facts.patents[1].official_fees"),
    ("patent-fees-missing", make_body("GT-PCT", {"patents": [
        {"country": "US", "granted_after_substantive_examination": True}]}), "facts.patents[0].official_fees"),
    ("patent-country-bad", make_body("GT-PCT", {"patents": [
        {"country": "United States", "official_fees": "1.00", "granted_after_substantive_examination": True}]}),
     "facts.patents[0].country"),
    ("patent-granted-not-bool", make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "1.00", "granted_after_substantive_examination": "yes"}]}),
     "facts.patents[0].granted_after_substantive_examination"),
    ("patent-unknown-key", make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "1.00", "granted_after_substantive_examination": True, "no": "x"}]}),
     "facts.patents[0].no"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_field_is_named(body: Any, field: str) -> None:
    errors = errors_of(body)
    assert field in {e.field for e in errors}, errors
    assert all(e.message for e in errors)


def test_all_errors_reported_at_once() -> None:
    body = make_body("GT-CLIN", {"enrolled_subjects": True, "event_date": "2024-02-30", "colour": "red"},
                     year="2024", subject="", requested_amount="1.001",
                     applicant={"id": bad_uscc(), "kind": "robot"})
    assert fields_of(body) == {"year", "subject", "requested_amount", "applicant.id", "applicant.kind",
                               "facts.enrolled_subjects", "facts.event_date", "facts.colour"}


def test_unknown_program_still_reports_other_fields() -> None:
    assert fields_of({**make_body("GT-EQUITY", year=1999), "program": "NOPE"}) == {"program", "year"}


# Well-formed but not qualifying: eligibility decisions (ineligible with a citation), never 422.
NOT_422: list[tuple[str, dict[str, Any]]] = [
    ("required-true-false", make_body("GT-CLIN", {"research_completed": False})),
    ("investment-relation-true", make_body("BIO-CDMO", {"investment_relation": True})),
    ("event-out-of-window", make_body("BIO-INNOV-DRUG", {"event_date": "2024-06-01"})),
    ("year-out-of-program-window", make_body("BIO-INNOV-DRUG", year=2030)),
    ("below-threshold", make_body("GT-EQUITY", {"financing_received": "0.00"})),
    ("kind-not-admitted", make_body("GT-CLIN", applicant={"kind": "enterprise", "id": ENTERPRISE})),
    ("not-registered-in-shanghai", make_body("GT-EQUITY", applicant={"registered_in_shanghai": False})),
    ("no-examined-patents", make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "1.00", "granted_after_substantive_examination": False}]})),
]


@pytest.mark.parametrize("body", [c[1] for c in NOT_422], ids=[c[0] for c in NOT_422])
def test_eligibility_matters_are_not_422(body: dict[str, Any]) -> None:
    assert errors_of(body) == []


def test_normalised_input() -> None:
    body = make_body("GT-CLIN", {"study_type": "sponsored_trial", "sponsor_id": SPONSOR},
                     requested_amount="1000.5")
    app, errors = validate_application(body, load_catalog())
    assert errors == [] and app is not None
    assert app.facts["event_date"] == date(2024, 3, 1)
    assert app.requested_amount_fen == 100050
    assert app.applicant_kind == "medical_institution"
    pct, _ = validate_application(make_body("GT-PCT"), load_catalog())
    assert pct is not None
    assert pct.facts["patents"] == [{"country": "US", "official_fees_fen": 3000000,
                                     "granted_after_substantive_examination": True}]


@pytest.mark.parametrize("program", sorted(BASE))
def test_wire_round_trip(program: str) -> None:
    app, _ = validate_application(make_body(program), load_catalog())
    assert app is not None
    wire = app.to_wire()
    assert ApplicationInput.from_wire(wire) == app
    assert wire == make_body(program)  # the base bodies are already in normal form


def test_to_wire_normalises_amounts() -> None:
    app, _ = validate_application(make_body("GT-EQUITY", {"financing_received": "80000000"},
                                            requested_amount="5"), load_catalog())
    assert app is not None
    wire = app.to_wire()
    assert wire["facts"]["financing_received"] == "80000000.00"
    assert wire["requested_amount"] == "5.00"


def test_from_wire_rejects_invalid() -> None:
    with pytest.raises(ValueError, match=r"facts\.event_date"):
        ApplicationInput.from_wire(make_body("GT-EQUITY", {"event_date": "2024-02-30"}))


# --- Subjects (CONTRACT.md, "Intake": subject; POLICY.md, "Subjects")

INVISIBLE = [
    ("zero-width-joiner", "CAR\u200dT-1"),
    ("zero-width-space", "CAR-T\u200b1"),
    ("byte-order-mark", "\ufeffCAR-T-1"),
    ("right-to-left-override", "CAR-T-1\u202e"),
    ("no-break-space", "CAR-T\u00a01"),
    ("ideographic-space", "CAR-T\u30001"),
    ("tab", "CAR-T\t1"),
    ("line-separator", "CAR-T\u20281"),
]


@pytest.mark.parametrize("subject", [c[1] for c in INVISIBLE], ids=[c[0] for c in INVISIBLE])
def test_invisible_characters_in_a_subject_are_422(subject: str) -> None:
    errors = errors_of(make_body("GT-PRODUCT", subject=subject))
    assert [e.field for e in errors] == ["subject"]
    assert "invisible" in errors[0].message


def test_only_separators_is_422() -> None:
    assert fields_of(make_body("GT-PRODUCT", subject="- _ . /")) == {"subject"}


# Issue 12's look-alikes: all accepted, all one key; the text is kept as typed.
LOOK_ALIKES = ["CAR-T 1", "car-t-1", "CAR-T 1 ", "ＣＡＲ－Ｔ－１", "CАR-T 1", "CAR_T.1"]


def test_look_alike_subjects_are_accepted_with_one_key() -> None:
    apps = [validate_application(make_body("GT-PRODUCT", subject=s), load_catalog())[0] for s in LOOK_ALIKES]
    assert all(app is not None for app in apps)
    assert len({app.subject_key for app in apps if app is not None}) == 1
    assert [app.subject for app in apps if app is not None] == LOOK_ALIKES


REGISTRY_SUBJECTS: list[tuple[str, str, str, bool]] = [
    # 000 §五(三): GT-PCT's subject is the PCT application number.
    ("pct", "GT-PCT", "PCT/CN2023/123456", True),
    ("pct-another-receiving-office", "GT-PCT", "PCT/IB2024/000001", True),
    ("pct-lower-case", "GT-PCT", "pct/cn2023/123456", True),
    ("pct-full-width", "GT-PCT", "ＰＣＴ／ＣＮ２０２３／１２３４５６", True),
    ("pct-surrounding-spaces", "GT-PCT", " PCT/CN2023/123456 ", True),
    ("pct-five-digits", "GT-PCT", "PCT/CN2023/12345", False),
    ("pct-seven-digits", "GT-PCT", "PCT/CN2023/1234567", False),
    ("pct-two-digit-year", "GT-PCT", "PCT/CN23/123456", False),
    ("pct-without-prefix", "GT-PCT", "CN2023/123456", False),
    ("pct-publication-number", "GT-PCT", "WO2024/123456", False),
    ("pct-free-text", "GT-PCT", "GT-PCT-SUBJECT-1", False),
    # 000 §四(二)5: GT-CLIN's subject is the trial's registry number (one project, every hospital).
    ("ctr", "GT-CLIN", "CTR20231234", True),
    ("chictr", "GT-CLIN", "ChiCTR2300071234", True),
    ("chictr-old-form", "GT-CLIN", "ChiCTR-TRC-12001234", True),
    ("nct", "GT-CLIN", "NCT01234567", True),
    ("nct-lower-case", "GT-CLIN", "nct01234567", True),
    ("ctr-seven-digits", "GT-CLIN", "CTR2023123", False),
    ("nct-seven-digits", "GT-CLIN", "NCT1234567", False),
    ("nct-nine-digits", "GT-CLIN", "NCT012345678", False),
    ("chictr-short", "GT-CLIN", "ChiCTR23", False),
    ("clin-free-text", "GT-CLIN", "PROJ-1", False),
    # Other programs: free text.
    ("equity-free-text", "GT-EQUITY", "ROUND-2024-B", True),
    ("product-free-text", "GT-PRODUCT", "产品甲", True),
]


@pytest.mark.parametrize(("program", "subject", "valid"), [c[1:] for c in REGISTRY_SUBJECTS],
                         ids=[c[0] for c in REGISTRY_SUBJECTS])
def test_registry_number_subjects(program: str, subject: str, valid: bool) -> None:
    errors = errors_of(make_body(program, subject=subject))
    assert [e.field for e in errors] == ([] if valid else ["subject"])
    if not valid:
        assert load_catalog().programs[program].subject.citation in errors[0].message  # type: ignore[union-attr]


# --- GT-PCT: the granting office is a foreign one (000 §五(三) 向国外申请; CONTRACT.md "Facts per program")


def patents(*countries: str) -> dict[str, Any]:
    return {"patents": [{"country": c, "official_fees": "1000.00", "granted_after_substantive_examination": True}
                        for c in countries]}


@pytest.mark.parametrize("country", ["US", "JP", "GB", "DE", "KR", "AU", "CA", "EP", "EA", "AP", "OA", "GC"])
def test_foreign_and_regional_offices_are_accepted(country: str) -> None:
    assert errors_of(make_body("GT-PCT", patents(country))) == []


@pytest.mark.parametrize(("country", "says"), [
    ("CN", "domestic"),  # China's own office
    ("WO", "International Bureau"),  # WIPO publishes, it does not grant
    ("XX", "ISO 3166-1"),
    ("UK", "ISO 3166-1"),  # the ISO code is GB
    ("EU", "ISO 3166-1"),  # the European Patent Office is EP
    ("us", "ISO 3166-1"),
    ("USA", "ISO 3166-1"),
    ("", "ISO 3166-1"),
])
def test_domestic_international_and_unknown_offices_are_422(country: str, says: str) -> None:
    errors = errors_of(make_body("GT-PCT", patents("US", country)))
    assert [e.field for e in errors] == ["facts.patents[1].country"]
    assert says in errors[0].message


def test_a_country_that_is_not_a_string_is_422() -> None:
    assert fields_of(make_body("GT-PCT", {"patents": [
        {"country": 840, "official_fees": "1.00", "granted_after_substantive_examination": True}]})) == {
        "facts.patents[0].country"}


# --- Applicant kinds, BIO-DEVICE stage b, registration: decisions, not 422


def test_research_institution_is_an_applicant_kind() -> None:
    for program in BASE:
        assert errors_of(make_body(program, applicant={"kind": "research_institution"})) == [], program


def test_device_first_registration_needs_entered_special_review() -> None:
    assert fields_of(make_body("BIO-DEVICE", drop=("entered_special_review",))) == {"facts.entered_special_review"}
    assert fields_of(make_body("BIO-DEVICE", {"entered_special_review": "yes"})) == {"facts.entered_special_review"}
    assert errors_of(make_body("BIO-DEVICE", {"entered_special_review": False})) == []  # ineligible, not 422
    special = make_body("BIO-DEVICE", {"stage": "special_review"}, drop=("entered_special_review",),
                        requested_amount="100.00")
    assert errors_of(special) == []


def test_a_code_from_elsewhere_declaring_shanghai_is_not_422() -> None:
    beijing = with_check_character("91110108MA01ABCD0")
    assert errors_of(make_body("GT-EQUITY", applicant={"id": beijing, "registered_in_shanghai": True})) == []
    assert errors_of(make_body("GT-CLIN", {"study_type": "sponsored_trial", "sponsor_id": beijing})) == []
