"""The eligibility engine, table-driven: every threshold, maximum and window edge.

Each case's id names the seed paragraph it checks (000 = gene therapy plan, 001 = cell
therapy plan, 002 = biomedicine opinions; see /work/shared/POLICY.md).
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.eligibility.domain import (
    BELOW_THRESHOLD,
    CALL_CLOSED,
    OUT_OF_WINDOW,
    RULE_FAILED,
    assess,
    assess_received,
)
from shared.contracts.envelope import Event, new_event
from shared.kernel.subjects import subject_key
from shared.kernel.uscc import with_check_character
from shared.policy.calls import CallTerms
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from tools.samples import BASE, ENTERPRISE, HOSPITAL, SPONSOR, make_body


def receipt_of(body: dict[str, Any]) -> dict[str, Any]:
    catalog = load_catalog()
    app, errors = validate_application(body, catalog)
    assert errors == [], errors
    assert app is not None
    return assess(app, catalog).to_receipt()


def codes(receipt: dict[str, Any]) -> set[str]:
    return {r["code"] for r in receipt["reasons"]}


# (id naming the paragraph, program, fact overrides, top-level overrides, entitlement or None when ineligible,
#  expected reason codes)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str | None, set[str]]] = [
    # --- 000 §四(二)5 GT-CLIN: 5万 per enrolled subject, 50万 per project, medical institutions
    ("000-4.2.5-one-subject", "GT-CLIN", {"enrolled_subjects": 1}, {}, "50000.00", set()),
    ("000-4.2.5-eight-subjects", "GT-CLIN", {}, {}, "400000.00", set()),
    ("000-4.2.5-ten-subjects-at-max", "GT-CLIN", {"enrolled_subjects": 10}, {}, "500000.00", set()),
    ("000-4.2.5-eleven-subjects-capped", "GT-CLIN", {"enrolled_subjects": 11}, {}, "500000.00", set()),
    ("000-4.2.5-sponsored-trial", "GT-CLIN", {"study_type": "sponsored_trial", "sponsor_id": SPONSOR}, {},
     "400000.00", set()),
    ("000-4.2.5-research-not-completed", "GT-CLIN", {"research_completed": False}, {}, None, {RULE_FAILED}),
    ("000-4.2.5-enterprise-not-admitted", "GT-CLIN", {},
     {"applicant": {"kind": "enterprise", "id": ENTERPRISE}}, None, {RULE_FAILED}),
    ("000-4.2.5-requested-lower", "GT-CLIN", {}, {"requested_amount": "123456.78"}, "123456.78", set()),
    # --- 000 §五(三) GT-PCT: 50% of official fees, at most 2万 per patent, 5 countries
    ("000-5.3-half-of-fees", "GT-PCT", {}, {}, "15000.00", set()),
    ("000-5.3-at-per-patent-cap", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "40000.00", "granted_after_substantive_examination": True}]}, {},
     "20000.00", set()),
    ("000-5.3-over-per-patent-cap", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "40000.02", "granted_after_substantive_examination": True}]}, {},
     "20000.00", set()),
    ("000-5.3-rounds-down", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "39999.99", "granted_after_substantive_examination": True}]}, {},
     "19999.99", set()),
    ("000-5.3-one-fen-rounds-to-zero", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "0.01", "granted_after_substantive_examination": True}]}, {},
     "0.00", set()),
    ("000-5.3-six-countries-best-five", "GT-PCT", {"patents": [
        {"country": c, "official_fees": f, "granted_after_substantive_examination": True}
        for c, f in [("US", "40000.00"), ("EP", "30000.00"), ("JP", "20000.00"), ("KR", "10000.00"),
                     ("AU", "8000.00"), ("CA", "6000.00")]]}, {},
     # 20000 + 15000 + 10000 + 5000 + 4000; CA (3000) is the sixth and is left out
     "54000.00", set()),
    ("000-5.3-one-per-country", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "10000.00", "granted_after_substantive_examination": True},
        {"country": "US", "official_fees": "30000.00", "granted_after_substantive_examination": True}]}, {},
     "15000.00", set()),
    ("000-5.3-only-examined-grants", "GT-PCT", {"patents": [
        {"country": "US", "official_fees": "30000.00", "granted_after_substantive_examination": True},
        {"country": "EP", "official_fees": "30000.00", "granted_after_substantive_examination": False}]}, {},
     "15000.00", set()),
    ("000-5.3-none-examined", "GT-PCT", {"patents": [
        {"country": "EP", "official_fees": "30000.00", "granted_after_substantive_examination": False}]}, {},
     None, {RULE_FAILED}),
    ("000-5.3-medical-institution-admitted", "GT-PCT", {},
     {"applicant": {"kind": "medical_institution", "id": HOSPITAL}}, "15000.00", set()),
    # --- 000 §五(四) GT-PRODUCT: requested amount, at most 3000万
    ("000-5.4-requested", "GT-PRODUCT", {}, {}, "20000000.00", set()),
    ("000-5.4-at-max", "GT-PRODUCT", {}, {"requested_amount": "30000000.00"}, "30000000.00", set()),
    ("000-5.4-over-max", "GT-PRODUCT", {}, {"requested_amount": "30000000.01"}, "30000000.00", set()),
    ("000-5.4-no-domestic-trial", "GT-PRODUCT", {"domestic_clinical_trial": False}, {}, None, {RULE_FAILED}),
    ("000-5.4-no-authorization", "GT-PRODUCT", {"marketing_authorization": False}, {}, None, {RULE_FAILED}),
    ("000-5.4-not-made-in-shanghai", "GT-PRODUCT", {"manufactured_in_shanghai": False}, {}, None, {RULE_FAILED}),
    ("000-5.4-institution-not-admitted", "GT-PRODUCT", {},
     {"applicant": {"kind": "medical_institution"}}, None, {RULE_FAILED}),
    # --- 000 §五(五) GT-INSURANCE: 50% of premium, at most 50万 per policy
    ("000-5.5-half-premium", "GT-INSURANCE", {}, {}, "50000.00", set()),
    ("000-5.5-rounds-down", "GT-INSURANCE", {"premium": "30000.01"}, {}, "15000.00", set()),
    ("000-5.5-at-max", "GT-INSURANCE", {"premium": "1000000.00"}, {}, "500000.00", set()),
    ("000-5.5-over-max", "GT-INSURANCE", {"premium": "1000000.02"}, {}, "500000.00", set()),
    ("000-5.5-hospital-admitted", "GT-INSURANCE", {},
     {"applicant": {"kind": "medical_institution", "id": HOSPITAL}}, "50000.00", set()),
    # --- 000 §五(六) GT-EQUITY: >= 5000万 received (以上, inclusive), 2%, 1000万 per year
    ("000-5.6-at-threshold", "GT-EQUITY", {"financing_received": "50000000.00"}, {}, "1000000.00", set()),
    ("000-5.6-one-fen-below", "GT-EQUITY", {"financing_received": "49999999.99"}, {}, None, {BELOW_THRESHOLD}),
    ("000-5.6-80m", "GT-EQUITY", {}, {}, "1600000.00", set()),
    ("000-5.6-300m", "GT-EQUITY", {"financing_received": "300000000.00"}, {}, "6000000.00", set()),
    ("000-5.6-500m-at-max", "GT-EQUITY", {"financing_received": "500000000.00"}, {}, "10000000.00", set()),
    # 每个企业每年不超过1000万元 is the beneficiary-year pool, applied by the ledger: never folded into
    # the entitlement (issue 12), which is 2% of what was received however large.
    ("000-5.6-600m-above-the-annual-cap", "GT-EQUITY", {"financing_received": "600000000.00"}, {},
     "12000000.00", set()),
    ("000-5.6-rounds-down", "GT-EQUITY", {"financing_received": "50000000.49"}, {}, "1000000.00", set()),
    ("000-5.6-requested-lower", "GT-EQUITY", {}, {"requested_amount": "400000.00"}, "400000.00", set()),
    ("000-5.6-requested-higher", "GT-EQUITY", {}, {"requested_amount": "9000000.00"}, "1600000.00", set()),
    # --- 001 §四(四)11 CT-PRODUCT and CT-INSURANCE
    ("001-4.4.11-product-requested", "CT-PRODUCT", {}, {}, "20000000.00", set()),
    ("001-4.4.11-product-over-max", "CT-PRODUCT", {}, {"requested_amount": "30000000.01"}, "30000000.00", set()),
    ("001-4.4.11-not-converted", "CT-PRODUCT", {"converted_in_shanghai": False}, {}, None, {RULE_FAILED}),
    ("001-4.4.11-no-authorization", "CT-PRODUCT", {"marketing_authorization": False}, {}, None, {RULE_FAILED}),
    ("001-4.4.11-insurance-rounds-down", "CT-INSURANCE", {"premium": "30000.01"}, {}, "15000.00", set()),
    ("001-4.4.11-insurance-at-max", "CT-INSURANCE", {"premium": "1000000.00"}, {}, "500000.00", set()),
    ("001-4.4.11-insurance-over-max", "CT-INSURANCE", {"premium": "1000000.02"}, {}, "500000.00", set()),
    ("001-4.4.11-insurance-hospital-not-admitted", "CT-INSURANCE", {},
     {"applicant": {"kind": "medical_institution", "id": HOSPITAL}}, None, {RULE_FAILED}),
    # --- 002 §三(一) BIO-INNOV-DRUG: 40% of R&D, at most 500万/1000万/3000万 by phase
    ("002-3.1-phase-I", "BIO-INNOV-DRUG", {}, {}, "4000000.00", set()),
    ("002-3.1-phase-I-at-max", "BIO-INNOV-DRUG", {"rd_investment": "12500000.00"}, {}, "5000000.00", set()),
    ("002-3.1-phase-I-capped", "BIO-INNOV-DRUG", {"rd_investment": "12500000.03"}, {}, "5000000.00", set()),
    ("002-3.1-phase-I-just-under", "BIO-INNOV-DRUG", {"rd_investment": "12499999.99"}, {}, "4999999.99", set()),
    ("002-3.1-phase-II-capped", "BIO-INNOV-DRUG", {"phase": "II", "rd_investment": "30000000.00"}, {},
     "10000000.00", set()),
    ("002-3.1-phase-II-under", "BIO-INNOV-DRUG", {"phase": "II", "rd_investment": "20000000.00"}, {},
     "8000000.00", set()),
    ("002-3.1-phase-III-at-max", "BIO-INNOV-DRUG", {"phase": "III", "rd_investment": "75000000.00"}, {},
     "30000000.00", set()),
    ("002-3.1-phase-III-capped", "BIO-INNOV-DRUG", {"phase": "III", "rd_investment": "100000000.00"}, {},
     "30000000.00", set()),
    ("002-3.1-tcm-class1", "BIO-INNOV-DRUG", {"drug_class": "tcm_class1"}, {}, "4000000.00", set()),
    ("002-3.1-not-licensed", "BIO-INNOV-DRUG", {"licensed_applicant": False}, {}, None, {RULE_FAILED}),
    ("002-3.1-not-made-in-shanghai", "BIO-INNOV-DRUG", {"manufactured_in_shanghai": False}, {}, None,
     {RULE_FAILED}),
    # --- 002 §三(二) BIO-IMPROVED-DRUG: 20% of R&D, at most 500万 (II) / 1000万 (III)
    ("002-3.2-phase-II", "BIO-IMPROVED-DRUG", {}, {}, "2000000.00", set()),
    ("002-3.2-phase-II-at-max", "BIO-IMPROVED-DRUG", {"rd_investment": "25000000.00"}, {}, "5000000.00", set()),
    ("002-3.2-phase-II-capped", "BIO-IMPROVED-DRUG", {"rd_investment": "30000000.00"}, {}, "5000000.00", set()),
    ("002-3.2-phase-III", "BIO-IMPROVED-DRUG", {"phase_completed": "III", "rd_investment": "30000000.00"}, {},
     "6000000.00", set()),
    ("002-3.2-phase-III-capped", "BIO-IMPROVED-DRUG", {"phase_completed": "III", "rd_investment": "60000000.00"},
     {}, "10000000.00", set()),
    ("002-3.2-not-licensed", "BIO-IMPROVED-DRUG", {"licensed_applicant": False}, {}, None, {RULE_FAILED}),
    # --- 002 §三(三) BIO-DEVICE: (a) special review, requested, at most 200万; (b) 40% of R&D, at most 500万
    ("002-3.3-special-review", "BIO-DEVICE", {"stage": "special_review"}, {"requested_amount": "1500000.00"},
     "1500000.00", set()),
    ("002-3.3-special-review-at-max", "BIO-DEVICE", {"stage": "special_review"},
     {"requested_amount": "2000000.00"}, "2000000.00", set()),
    ("002-3.3-special-review-capped", "BIO-DEVICE", {"stage": "special_review"},
     {"requested_amount": "2000000.01"}, "2000000.00", set()),
    ("002-3.3-special-review-no-registration-facts", "BIO-DEVICE", {"stage": "special_review"},
     {"requested_amount": "100000.00"}, "100000.00", set()),
    ("002-3.3-first-registration", "BIO-DEVICE", {}, {}, "4000000.00", set()),
    ("002-3.3-first-registration-at-max", "BIO-DEVICE", {"rd_investment": "12500000.00"}, {}, "5000000.00", set()),
    ("002-3.3-first-registration-capped", "BIO-DEVICE", {"rd_investment": "20000000.00"}, {}, "5000000.00", set()),
    ("002-3.3-first-registration-not-made-in-shanghai", "BIO-DEVICE", {"manufactured_in_shanghai": False}, {},
     None, {RULE_FAILED}),
    # --- 002 §三(五) BIO-OVERSEAS: 30% of R&D, at most 1000万, once
    ("002-3.5-overseas", "BIO-OVERSEAS", {}, {}, "6000000.00", set()),
    ("002-3.5-overseas-at-max", "BIO-OVERSEAS", {"rd_investment": "33333333.33"}, {}, "9999999.99", set()),
    ("002-3.5-overseas-capped", "BIO-OVERSEAS", {"rd_investment": "40000000.00", "agency": "PMDA"}, {},
     "10000000.00", set()),
    ("002-3.5-no-overseas-sales", "BIO-OVERSEAS", {"overseas_sales": False}, {}, None, {RULE_FAILED}),
    # --- 002 §五(一) BIO-CHAIN: 30% of approved new investment, at most 1500万; major project up to 1亿
    ("002-5.1-chain", "BIO-CHAIN", {}, {}, "12000000.00", set()),
    ("002-5.1-chain-at-max", "BIO-CHAIN", {"approved_new_investment": "50000000.00"}, {}, "15000000.00", set()),
    ("002-5.1-chain-capped", "BIO-CHAIN", {"approved_new_investment": "60000000.00"}, {}, "15000000.00", set()),
    ("002-5.1-major-project", "BIO-CHAIN", {"major_project": True}, {"requested_amount": "100000000.00"},
     "100000000.00", set()),
    ("002-5.1-major-project-capped", "BIO-CHAIN", {"major_project": True}, {"requested_amount": "120000000.00"},
     "100000000.00", set()),
    ("002-5.1-major-project-without-investment", "BIO-CHAIN", {"major_project": True},
     {"requested_amount": "50000000.00"}, "50000000.00", set()),
    # --- 002 §五(二) BIO-DIGITAL 20% ≤ 1000万; BIO-UPGRADE 10% ≤ 5000万
    ("002-5.2-digital", "BIO-DIGITAL", {}, {}, "8000000.00", set()),
    ("002-5.2-digital-at-max", "BIO-DIGITAL", {"approved_investment": "50000000.00"}, {}, "10000000.00", set()),
    ("002-5.2-digital-capped", "BIO-DIGITAL", {"approved_investment": "60000000.00"}, {}, "10000000.00", set()),
    ("002-5.2-upgrade", "BIO-UPGRADE", {}, {}, "40000000.00", set()),
    ("002-5.2-upgrade-at-max", "BIO-UPGRADE", {"approved_investment": "500000000.00"}, {}, "50000000.00", set()),
    ("002-5.2-upgrade-capped", "BIO-UPGRADE", {"approved_investment": "600000000.00"}, {}, "50000000.00", set()),
    ("002-5.2-upgrade-rounds-down", "BIO-UPGRADE", {"approved_investment": "0.09"}, {}, "0.00", set()),
    # --- 002 §五(三) BIO-CDMO: 20% of the first contract, at most 500万, no investment relation
    ("002-5.3-cdmo", "BIO-CDMO", {}, {}, "4000000.00", set()),
    ("002-5.3-cdmo-at-max", "BIO-CDMO", {"first_contract_amount": "25000000.00"}, {}, "5000000.00", set()),
    ("002-5.3-cdmo-capped", "BIO-CDMO", {"first_contract_amount": "30000000.00"}, {}, "5000000.00", set()),
    ("002-5.3-cdmo-investment-relation", "BIO-CDMO", {"investment_relation": True}, {}, None, {RULE_FAILED}),
    # --- 002 §六(二) BIO-FIRST-UNIT: 20% of the sales contract, at most 3000万 device / 300万 material
    ("002-6.2-device", "BIO-FIRST-UNIT", {}, {}, "20000000.00", set()),
    ("002-6.2-device-at-max", "BIO-FIRST-UNIT", {"sales_contract_amount": "150000000.00"}, {}, "30000000.00",
     set()),
    ("002-6.2-device-capped", "BIO-FIRST-UNIT", {"sales_contract_amount": "200000000.00"}, {}, "30000000.00",
     set()),
    ("002-6.2-material", "BIO-FIRST-UNIT", {"item": "material", "sales_contract_amount": "10000000.00"}, {},
     "2000000.00", set()),
    ("002-6.2-material-at-max", "BIO-FIRST-UNIT", {"item": "material", "sales_contract_amount": "15000000.00"},
     {}, "3000000.00", set()),
    ("002-6.2-material-capped", "BIO-FIRST-UNIT", {"item": "material", "sales_contract_amount": "20000000.00"},
     {}, "3000000.00", set()),
]


@pytest.mark.parametrize(("program", "facts", "top", "entitlement", "reason_codes"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_entitlement(program: str, facts: dict[str, Any], top: dict[str, Any], entitlement: str | None,
                     reason_codes: set[str]) -> None:
    receipt = receipt_of(make_body(program, facts, **top))
    assert receipt["eligible"] is (entitlement is not None)
    assert receipt["entitlement"] == (entitlement or "0.00")
    assert codes(receipt) == reason_codes
    for reason in receipt["reasons"]:
        assert reason["citation"] and reason["message"]


# Window edges: the day before the start, the start, the end, the day after the end; and the support year.
WINDOWS = {
    # 000: issued 2023-08-31, plan for 2023-2025
    "000": (["GT-CLIN", "GT-PCT", "GT-PRODUCT", "GT-INSURANCE", "GT-EQUITY"], "2023-08-31", "2025-12-31", 2023, 2025),
    # 001: issued 2022-10-31, plan for 2022-2024
    "001": (["CT-PRODUCT", "CT-INSURANCE"], "2022-10-31", "2024-12-31", 2022, 2024),
    # 002 末段: 自2021年6月1日起实施，有效期至2024年5月31日
    "002": (["BIO-INNOV-DRUG", "BIO-IMPROVED-DRUG", "BIO-DEVICE", "BIO-OVERSEAS", "BIO-CHAIN", "BIO-DIGITAL",
             "BIO-UPGRADE", "BIO-CDMO", "BIO-FIRST-UNIT"], "2021-06-01", "2024-05-31", 2021, 2024),
}


def _day(iso: str, delta: int) -> str:
    return (date.fromisoformat(iso) + timedelta(days=delta)).isoformat()


WINDOW_CASES = []
for seed, (programs, start, end, first, last) in WINDOWS.items():
    for program in programs:
        mid_year = max(first, min(last, int(start[:4]) + 1))
        for label, event, year, inside in [
            ("day-before-start", _day(start, -1), first, False),
            ("start", start, first, True),
            ("end", end, last, True),
            ("day-after-end", _day(end, 1), last, False),
            ("year-before-first", start, first - 1, False),
            ("year-after-last", end, last + 1, False),
            ("mid", f"{mid_year}-03-01" if f"{mid_year}-03-01" >= start else start, mid_year, True),
        ]:
            WINDOW_CASES.append(pytest.param(program, event, year, inside, id=f"{seed}-window-{program}-{label}"))


@pytest.mark.parametrize(("program", "event", "year", "inside"), WINDOW_CASES)
def test_window_edges(program: str, event: str, year: int, inside: bool) -> None:
    receipt = receipt_of(make_body(program, {"event_date": event}, year=year,
                                   requested_amount=BASE[program].get("requested_amount", "1000.00")))
    assert receipt["eligible"] is inside
    if inside:
        assert receipt["entitlement"] != "0.00" or program == "GT-PCT"
    else:
        assert codes(receipt) == {OUT_OF_WINDOW}
        assert receipt["entitlement"] == "0.00"


def test_bio_innov_drug_window_end_002_last_paragraph() -> None:
    # 002 末段: 有效期至2024年5月31日 — the last day counts, the next one does not.
    assert receipt_of(make_body("BIO-INNOV-DRUG", {"event_date": "2024-05-31"}, year=2024))["eligible"]
    late = receipt_of(make_body("BIO-INNOV-DRUG", {"event_date": "2024-06-01"}, year=2024))
    assert not late["eligible"]
    assert late["reasons"][0]["code"] == OUT_OF_WINDOW
    assert late["reasons"][0]["citation"] == "002 末段"


@pytest.mark.parametrize("program", sorted(BASE))
def test_not_registered_in_shanghai_is_ineligible_002_1_3(program: str) -> None:
    receipt = receipt_of(make_body(program, applicant={"registered_in_shanghai": False}))
    assert receipt["eligible"] is False
    assert receipt["entitlement"] == "0.00"
    assert receipt["reasons"] == [
        {"code": RULE_FAILED, "message": receipt["reasons"][0]["message"], "citation": "002 §一(三)"}]
    assert "registered_in_shanghai" in receipt["reasons"][0]["message"]


@pytest.mark.parametrize("program", sorted(BASE))
def test_base_case_is_eligible_and_every_rule_cited(program: str) -> None:
    receipt = receipt_of(make_body(program))
    assert receipt["eligible"] is True, receipt["reasons"]
    names = [r["rule"] for r in receipt["rules"]]
    assert names[:4] == ["registered_in_shanghai", "applicant_kind", "window.event_date", "window.year"]
    assert all(r["citation"] for r in receipt["rules"])
    assert all(r["passed"] for r in receipt["rules"])


def test_all_failures_reported_at_once() -> None:
    # 000 §五(六) threshold + 000 window + 002 §一(三) registration, all in one receipt
    receipt = receipt_of(make_body("GT-EQUITY", {"financing_received": "1.00", "event_date": "2026-01-01"},
                                   applicant={"registered_in_shanghai": False}))
    assert [r["code"] for r in receipt["reasons"]] == [RULE_FAILED, OUT_OF_WINDOW, BELOW_THRESHOLD]
    failed = {r["rule"] for r in receipt["rules"] if not r["passed"]}
    assert failed == {"registered_in_shanghai", "window.event_date", "threshold.financing_received"}


def test_below_threshold_cites_000_5_6() -> None:
    receipt = receipt_of(make_body("GT-EQUITY", {"financing_received": "49999999.99"}))
    assert receipt["reasons"][0]["citation"] == "000 §五(六)"
    rule = next(r for r in receipt["rules"] if r["rule"] == "threshold.financing_received")
    assert rule["passed"] is False


MILESTONES = [
    ("GT-CLIN", {}, "completion"),
    ("GT-PCT", {}, "grant"),
    ("GT-PRODUCT", {}, "marketing_authorization"),
    ("GT-INSURANCE", {}, "premium"),
    ("GT-EQUITY", {}, "financing"),
    ("CT-PRODUCT", {}, "marketing_authorization"),
    ("CT-INSURANCE", {}, "premium"),
    ("BIO-INNOV-DRUG", {"phase": "II"}, "phase_II"),
    ("BIO-IMPROVED-DRUG", {"phase_completed": "III"}, "phase_III_completed"),
    ("BIO-DEVICE", {}, "first_registration"),
    ("BIO-OVERSEAS", {}, "overseas_registration"),
    ("BIO-CHAIN", {}, "project"),
    ("BIO-DIGITAL", {}, "project"),
    ("BIO-UPGRADE", {}, "project"),
    ("BIO-CDMO", {}, "first_transaction"),
    ("BIO-FIRST-UNIT", {}, "first_unit"),
]


@pytest.mark.parametrize(("program", "facts", "milestone"), MILESTONES, ids=[m[0] for m in MILESTONES])
def test_overlap_key(program: str, facts: dict[str, Any], milestone: str) -> None:
    body = make_body(program, facts)
    receipt = receipt_of(body)
    # The overlap key compares subjects as a reader would (issue 12): their key, not the text as typed.
    assert receipt["overlap"] == {"applicant": body["applicant"]["id"], "subject": subject_key(body["subject"]),
                                  "milestone": milestone}
    assert receipt["subject"] == body["subject"]  # kept for display


def test_device_special_review_milestone_002_3_3() -> None:
    receipt = receipt_of(make_body("BIO-DEVICE", {"stage": "special_review"}, requested_amount="100.00"))
    assert receipt["overlap"]["milestone"] == "special_review"


POOLS = {
    # 000 §四(二)5: 50万 per project across every institution running it (a project pool), 500万 a year each.
    "GT-CLIN": [("GT-CLIN/project", "project", "500000.00"), ("GT-CLIN/beneficiary-year", "beneficiary_year",
                                                                "5000000.00")],
    "GT-PCT": [],
    "GT-PRODUCT": [("GT-PRODUCT/subject", "subject", "30000000.00"),
                   ("GT-PRODUCT/beneficiary-year", "beneficiary_year", "100000000.00")],
    "GT-INSURANCE": [("GT-INSURANCE/subject", "subject", "500000.00")],
    "GT-EQUITY": [("GT-EQUITY/beneficiary-year", "beneficiary_year", "10000000.00")],
    "CT-PRODUCT": [("CT-PRODUCT/subject", "subject", "30000000.00"),
                   ("CT-PRODUCT/beneficiary-year", "beneficiary_year", "100000000.00")],
    "CT-INSURANCE": [("CT-INSURANCE/subject", "subject", "500000.00")],
    "BIO-INNOV-DRUG": [("BIO-INNOV-DRUG/beneficiary-year", "beneficiary_year", "100000000.00")],
    "BIO-IMPROVED-DRUG": [("BIO-IMPROVED-DRUG/beneficiary-year", "beneficiary_year", "20000000.00")],
    "BIO-DEVICE": [("BIO-DEVICE/beneficiary-year", "beneficiary_year", "15000000.00")],
    "BIO-OVERSEAS": [],
    "BIO-CHAIN": [],
    "BIO-DIGITAL": [],
    "BIO-UPGRADE": [],
    "BIO-CDMO": [("BIO-CDMO/beneficiary-year", "beneficiary_year", "10000000.00")],
    "BIO-FIRST-UNIT": [],
}


@pytest.mark.parametrize("program", sorted(POOLS))
def test_pools_in_receipt(program: str) -> None:
    body = make_body(program)
    receipt = receipt_of(body)
    assert [(p["pool"], p["scope"], p["cap"]) for p in receipt["pools"]] == POOLS[program]
    for pool in receipt["pools"]:
        assert pool["beneficiary"] == ("*" if pool["scope"] == "project" else body["applicant"]["id"])
        assert pool["citation"]
        if pool["scope"] in ("subject", "project"):
            assert (pool["year"], pool["subject"]) == (None, subject_key(body["subject"]))
        else:
            assert (pool["year"], pool["subject"]) == (body["year"], None)


def test_ineligible_still_lists_pools() -> None:
    receipt = receipt_of(make_body("GT-EQUITY", {"financing_received": "1.00"}))
    assert receipt["entitlement"] == "0.00"
    assert [p["pool"] for p in receipt["pools"]] == ["GT-EQUITY/beneficiary-year"]


def test_receipt_shape() -> None:
    body = make_body("GT-EQUITY", requested_amount="1600000.00")
    receipt = receipt_of(body)
    assert list(receipt) == ["program", "year", "applicant", "subject", "eligible", "entitlement", "reasons",
                             "rules", "pools", "overlap", "catalog_version", "engine_version", "inputs", "review"]
    assert receipt["applicant"] == body["applicant"]
    assert receipt["catalog_version"] == load_catalog().version
    assert receipt["catalog_version"].startswith("sha256:")
    assert receipt["engine_version"] == "1"
    assert receipt["inputs"] == {"requested_amount": "1600000.00", "facts": body["facts"]}
    for rule in receipt["rules"]:
        assert set(rule) == {"rule", "passed", "detail", "citation"}


def test_receipt_inputs_are_normalised_and_null_requested() -> None:
    body = make_body("GT-PCT", {"patents": [
        {"country": "US", "official_fees": "30000.5", "granted_after_substantive_examination": True}]})
    receipt = receipt_of(body)
    assert receipt["inputs"]["requested_amount"] is None
    assert receipt["inputs"]["facts"]["patents"][0]["official_fees"] == "30000.50"
    assert receipt["entitlement"] == "15000.25"


def test_assess_is_deterministic() -> None:
    catalog = load_catalog()
    app, _ = validate_application(make_body("BIO-INNOV-DRUG"), catalog)
    assert app is not None
    assert assess(app, catalog).to_receipt() == assess(app, catalog).to_receipt()


# --- Under a call (申报批次): its event window, its support year, its budget, its version, its id.

CST = timezone(timedelta(hours=8))


def equity_call(**changes: Any) -> CallTerms:
    # GT-EQUITY (000 §五(六)): the program's event window is 2023-08-31..2025-12-31, years 2023..2025.
    terms = CallTerms(
        id="call_equity_2024", program="GT-EQUITY", year=2024,
        opens_at=datetime(2024, 3, 1, tzinfo=CST), closes_at=datetime(2024, 6, 30, 17, tzinfo=CST),
        event_from=date(2024, 1, 1), event_to=date(2024, 12, 31), catalog_version=load_catalog().version,
        budget_fen=None)
    return replace(terms, **changes)


def receipt_under(body: dict[str, Any], call: CallTerms) -> dict[str, Any]:
    catalog = load_catalog()
    app, errors = validate_application(body, catalog)
    assert errors == [] and app is not None, errors
    return assess(app, catalog, call).to_receipt()


@pytest.mark.parametrize(("event", "inside"), [("2023-12-31", False), ("2024-01-01", True), ("2024-12-31", True),
                                                ("2025-01-01", False)])
def test_the_event_window_is_the_calls(event: str, inside: bool) -> None:
    # Every one of these dates is inside the program's own window: only the call's decides.
    receipt = receipt_under(make_body("GT-EQUITY", {"event_date": event}), equity_call())
    assert receipt["eligible"] is inside
    rule = next(r for r in receipt["rules"] if r["rule"] == "window.event_date")
    assert (rule["passed"], rule["citation"]) == (inside, "call call_equity_2024")
    if not inside:
        assert receipt["reasons"] == [{"code": OUT_OF_WINDOW, "message": receipt["reasons"][0]["message"],
                                       "citation": "call call_equity_2024"}]


def test_the_support_year_of_beneficiary_year_pools_is_the_calls() -> None:
    # The loophole of issue 12: an applicant cannot choose which year's annual cap it draws on.
    receipt = receipt_under(make_body("GT-EQUITY", year=2025), equity_call())
    assert [(p["pool"], p["year"]) for p in receipt["pools"]] == [("GT-EQUITY/beneficiary-year", 2024)]
    assert receipt["year"] == 2025  # what the application said, for the record


def test_the_call_years_window_rule() -> None:
    receipt = receipt_under(make_body("GT-EQUITY", year=2030), equity_call())
    assert next(r for r in receipt["rules"] if r["rule"] == "window.year")["passed"] is True


def test_the_receipt_names_the_call_and_its_version() -> None:
    receipt = receipt_under(make_body("GT-EQUITY"), equity_call())
    assert list(receipt)[list(receipt).index("catalog_version"):][:3] == ["catalog_version", "call_id",
                                                                          "engine_version"]
    assert (receipt["call_id"], receipt["catalog_version"]) == ("call_equity_2024", load_catalog().version)
    assert "call_id" not in receipt_of(make_body("GT-EQUITY"))  # without a call, as before


def test_a_budget_is_one_more_pool_shared_by_every_applicant() -> None:
    receipt = receipt_under(make_body("GT-EQUITY"), equity_call(budget_fen=5_000_000_000))
    assert receipt["pools"][-1] == {"pool": "call-budget", "scope": "call", "beneficiary": "*", "year": 2024,
                                    "subject": "call_equity_2024", "cap": "50000000.00",
                                    "citation": "call call_equity_2024"}
    assert [p["pool"] for p in receipt_under(make_body("GT-EQUITY"), equity_call())["pools"]] == [
        "GT-EQUITY/beneficiary-year"]


def test_a_call_for_another_program_or_version_is_a_bug_not_a_decision() -> None:
    catalog = load_catalog()
    app, _ = validate_application(make_body("GT-EQUITY"), catalog)
    assert app is not None
    with pytest.raises(ValueError, match="GT-CLIN"):
        assess(app, catalog, equity_call(program="GT-CLIN"))
    with pytest.raises(ValueError, match="pins catalog"):
        assess(app, catalog, equity_call(catalog_version="sha256:" + "0" * 64))


def received_event(body: dict[str, Any], call_id: str | None, time: datetime) -> Event:
    data: dict[str, Any] = {"application_id": "app_1", "partner_id": "prt_1", "application": body}
    if call_id is not None:
        data["call_id"] = call_id
    return new_event("application.received", source="intake", subject="app_1", data=data, time=time)


@pytest.mark.parametrize(("received", "is_open"), [
    (datetime(2024, 3, 1, tzinfo=CST), True),
    (datetime(2024, 6, 30, 16, 59, 59, 999999, tzinfo=CST), True),
    (datetime(2024, 6, 30, 17, tzinfo=CST), False),  # closes_at itself is too late
    (datetime(2024, 6, 30, 9, tzinfo=UTC), False),
])
def test_received_after_the_call_closed_is_call_closed(received: datetime, is_open: bool) -> None:
    # A call closed early (closes_at moved) while intake still accepted: decided at assessment.
    assessed = assess_received(received_event(make_body("GT-EQUITY"), "call_equity_2024", received),
                               load_catalog(), equity_call())
    receipt = assessed.receipt
    assert receipt["eligible"] is is_open
    assert receipt["call_id"] == "call_equity_2024"
    assert next(r for r in receipt["rules"] if r["rule"] == "call.open")["passed"] is is_open
    if not is_open:
        assert [(r["code"], r["citation"]) for r in receipt["reasons"]] == [(CALL_CLOSED, "call call_equity_2024")]
        assert receipt["entitlement"] == "0.00"


def test_received_under_another_call_is_refused() -> None:
    event = received_event(make_body("GT-EQUITY"), "call_other", datetime(2024, 3, 2, tzinfo=CST))
    with pytest.raises(ValueError, match="call_other"):
        assess_received(event, load_catalog(), equity_call())


def test_received_without_a_call_is_assessed_as_before() -> None:
    event = received_event(make_body("GT-EQUITY"), None, datetime(2030, 1, 1, tzinfo=UTC))
    receipt = assess_received(event, load_catalog()).receipt
    assert receipt["eligible"] is True and "call_id" not in receipt
    assert [r["rule"] for r in receipt["rules"]][:4] == ["registered_in_shanghai", "applicant_kind",
                                                         "window.event_date", "window.year"]


# --- 002 §一(三): registered in Shanghai, as the unified social credit code says (characters 3-8)

BEIJING = with_check_character("91110108MA01ABCD0")  # Beijing Haidian
BEIJING_HOSPITAL = with_check_character("12110000400000001")


def _with_region(code: str, region: str) -> str:
    return with_check_character(code[:2] + region + code[8:17])


@pytest.mark.parametrize("program", sorted(BASE))
def test_a_code_issued_outside_shanghai_is_ineligible_whatever_it_declares_002_1_3(program: str) -> None:
    code = BEIJING_HOSPITAL if BASE[program].get("kind") == "medical_institution" else BEIJING
    receipt = receipt_of(make_body(program, applicant={"id": code, "registered_in_shanghai": True}))
    assert receipt["eligible"] is False
    assert receipt["entitlement"] == "0.00"
    assert receipt["reasons"] == [
        {"code": RULE_FAILED, "message": receipt["reasons"][0]["message"], "citation": "002 §一(三)"}]
    assert receipt["reasons"][0]["message"].startswith("registered_in_shanghai: ")
    assert "110" in receipt["reasons"][0]["message"]  # the region the code was issued in


@pytest.mark.parametrize(("region", "in_shanghai"), [
    ("310000", True),  # the city itself
    ("310115", True),  # Pudong
    ("319900", True),  # any 31…: the province-level unit is what counts
    ("300000", False),
    ("320500", False),  # Suzhou, next door
    ("131000", False),  # 31 elsewhere than at the start
    ("110108", False),
])
def test_shanghai_is_the_region_codes_first_two_digits(region: str, in_shanghai: bool) -> None:
    receipt = receipt_of(make_body("GT-EQUITY", applicant={"id": _with_region(ENTERPRISE, region)}))
    assert receipt["eligible"] is in_shanghai
    rule = next(r for r in receipt["rules"] if r["rule"] == "registered_in_shanghai")
    assert (rule["passed"], rule["citation"]) == (in_shanghai, "002 §一(三)")


def test_a_shanghai_code_declaring_elsewhere_is_taken_at_its_word_002_1_3() -> None:
    receipt = receipt_of(make_body("GT-EQUITY", applicant={"registered_in_shanghai": False}))
    assert [r["code"] for r in receipt["reasons"]] == [RULE_FAILED]
    assert "declares" in receipt["reasons"][0]["message"]
    both = receipt_of(make_body("GT-EQUITY", applicant={"id": BEIJING, "registered_in_shanghai": False}))
    assert [r["code"] for r in both["reasons"]] == [RULE_FAILED]  # one rule, one reason


@pytest.mark.parametrize(("sponsor", "eligible"), [(SPONSOR, True), (BEIJING, False),
                                                   (_with_region(SPONSOR, "320500"), False)])
def test_gt_clin_sponsor_is_a_shanghai_enterprise_000_4_2_5(sponsor: str, eligible: bool) -> None:
    # 000 §四(二)5: 承担本市企业新药临床试验 — the sponsor's own code says where it is registered.
    receipt = receipt_of(make_body("GT-CLIN", {"study_type": "sponsored_trial", "sponsor_id": sponsor}))
    assert receipt["eligible"] is eligible
    rule = next(r for r in receipt["rules"] if r["rule"] == "registered_in_shanghai.sponsor_id")
    assert (rule["passed"], rule["citation"]) == (eligible, "000 §四(二)5; 002 §一(三)")
    if not eligible:
        assert [(r["code"], r["citation"]) for r in receipt["reasons"]] == [(RULE_FAILED, "000 §四(二)5; 002 §一(三)")]


def test_gt_clin_iit_has_no_sponsor_rule() -> None:
    receipt = receipt_of(make_body("GT-CLIN"))
    assert "registered_in_shanghai.sponsor_id" not in {r["rule"] for r in receipt["rules"]}


# --- Applicant kinds: research institutions (事业单位) where the seeds admit them

RESEARCH_INSTITUTE = with_check_character("12310104425000123")
ADMITS_RESEARCH = {"GT-PCT", "BIO-INNOV-DRUG"}  # 000 §五(三) and 002 §三(一), with 002 §一(三)'s 企事业单位


@pytest.mark.parametrize("program", sorted(BASE))
def test_research_institutions_where_the_seeds_admit_them(program: str) -> None:
    receipt = receipt_of(make_body(program, applicant={"kind": "research_institution", "id": RESEARCH_INSTITUTE}))
    assert receipt["eligible"] is (program in ADMITS_RESEARCH)
    rule = next(r for r in receipt["rules"] if r["rule"] == "applicant_kind")
    assert rule["passed"] is (program in ADMITS_RESEARCH)
    if program not in ADMITS_RESEARCH:
        assert codes(receipt) == {RULE_FAILED}


# --- 002 §三(三) BIO-DEVICE stage b: 对进入上述程序、首次取得医疗器械注册证… — having entered special review


@pytest.mark.parametrize(("entered", "eligible"), [(True, True), (False, False)])
def test_device_first_registration_requires_special_review_002_3_3(entered: bool, eligible: bool) -> None:
    receipt = receipt_of(make_body("BIO-DEVICE", {"entered_special_review": entered}))
    assert receipt["eligible"] is eligible
    rule = next(r for r in receipt["rules"] if r["rule"] == "required_true.entered_special_review")
    assert (rule["passed"], rule["citation"]) == (eligible, "002 §三(三)")
    assert receipt["entitlement"] == ("4000000.00" if eligible else "0.00")


def test_device_special_review_stage_has_no_such_rule() -> None:
    receipt = receipt_of(make_body("BIO-DEVICE", {"stage": "special_review"}, drop=("entered_special_review",),
                                   requested_amount="100.00"))
    assert receipt["eligible"] is True
    assert "required_true.entered_special_review" not in {r["rule"] for r in receipt["rules"]}


# --- GT-CLIN: 50万 per project across every institution running it (000 §四(二)5)

HOSPITAL_2 = with_check_character("12310000425006999")


def test_two_hospitals_on_one_trial_claim_one_project_pool() -> None:
    # Look-alike spellings of one registry number are one project too.
    first = receipt_of(make_body("GT-CLIN", subject="NCT05000001"))
    second = receipt_of(make_body("GT-CLIN", subject="nct05000001 ", applicant={"id": HOSPITAL_2}))
    project = [next(p for p in r["pools"] if p["scope"] == "project") for r in (first, second)]
    assert project[0] == project[1] == {"pool": "GT-CLIN/project", "scope": "project", "beneficiary": "*",
                                        "year": None, "subject": subject_key("NCT05000001"), "cap": "500000.00",
                                        "citation": "000 §四(二)5"}
    years = [next(p for p in r["pools"] if p["scope"] == "beneficiary_year")["beneficiary"] for r in (first, second)]
    assert years == [HOSPITAL, HOSPITAL_2]  # 500万 a year is each institution's own


# --- Subjects: issue 12's look-alikes are one overlap key and one per-subject pool



def test_look_alike_subjects_share_one_overlap_key_and_pool() -> None:
    keys = set()
    for subject in ("CAR-T 1", "ＣＡＲ－Ｔ－１", "CAR-T 1 ", "car-t 1", "CАR-Т 1", "CAR_T.1"):
        receipt = receipt_of(make_body("GT-PRODUCT", subject=subject))
        assert receipt["subject"] == subject  # for display, as typed
        keys.add((receipt["overlap"]["subject"], receipt["pools"][0]["subject"]))
    assert keys == {(subject_key("CAR-T 1"), subject_key("CAR-T 1"))}
    nfc, nfd = (receipt_of(make_body("GT-PRODUCT", subject=unicodedata.normalize(form, "Thérapie 1")))
                for form in ("NFC", "NFD"))
    assert nfc["overlap"] == nfd["overlap"]


# --- Entitlement: what the policy pays before any pool (issue 12)


def test_an_annual_cap_is_a_pool_never_the_entitlement_000_5_6() -> None:
    receipt = receipt_of(make_body("GT-EQUITY", {"financing_received": "1000000000.00"}))
    assert receipt["entitlement"] == "20000000.00"  # 2% of 10亿, though 1000万 a year is all the pool holds
    assert receipt["pools"][0]["cap"] == "10000000.00"
    maximum = next(r for r in receipt["rules"] if r["rule"] == "maximum")
    assert maximum["detail"] == "no per-award maximum (the caps are pools)"


@pytest.mark.parametrize(("program", "facts", "requested", "entitlement"), [
    # 最高 (up to): the request clipped to the ceiling, at the fen either side.
    ("GT-PRODUCT", {}, "29999999.99", "29999999.99"),
    ("GT-PRODUCT", {}, "30000000.01", "30000000.00"),
    ("CT-PRODUCT", {}, "30000000.00", "30000000.00"),
    ("BIO-DEVICE", {"stage": "special_review"}, "2000000.01", "2000000.00"),
    ("BIO-CHAIN", {"major_project": True}, "100000000.01", "100000000.00"),
    ("GT-PRODUCT", {}, "0.01", "0.01"),
])
def test_a_requested_amount_is_clipped_to_the_ceiling(program: str, facts: dict[str, Any], requested: str,
                                                       entitlement: str) -> None:
    assert receipt_of(make_body(program, facts, requested_amount=requested))["entitlement"] == entitlement
