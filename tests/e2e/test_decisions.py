"""The policy's figures and the ledger's caps, through the four services running as processes
(issue 3 and issue 4 acceptance): one application per program, stacked caps, overlap,
revocation, and 200 concurrent applications filling a 1000万 pool exactly."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import httpx
import pytest

from shared.kernel.money import format_fen, parse_amount
from tests.support.auth import AUD, OP, OPERATOR_TOKEN
from tests.support.client import Partner, create_partner, random_uscc
from tests.support.processes import Stack
from tools.samples import make_body

pytestmark = pytest.mark.e2e

# The entitlement POLICY.md gives for each program's base case (tools/samples.py BASE).
EXPECTED = {
    "GT-CLIN": "400000.00",  # 5万 × 8 subjects (000 §四(二)5)
    "GT-PCT": "15000.00",  # 50% of 30000.00 fees (000 §五(三))
    "GT-PRODUCT": "20000000.00",  # requested 2000万 ≤ 3000万 (000 §五(四))
    "GT-INSURANCE": "50000.00",  # 50% of a 10万 premium (000 §五(五))
    "GT-EQUITY": "1600000.00",  # 2% of 8000万 (000 §五(六))
    "CT-PRODUCT": "20000000.00",  # requested 2000万 (001 §四(四)11)
    "CT-INSURANCE": "50000.00",  # 50% of 10万 (001 §四(四)11)
    "BIO-INNOV-DRUG": "4000000.00",  # 40% of 1000万, phase I max 500万 (002 §三(一))
    "BIO-IMPROVED-DRUG": "2000000.00",  # 20% of 1000万 (002 §三(二))
    "BIO-DEVICE": "4000000.00",  # 40% of 1000万 (002 §三(三))
    "BIO-OVERSEAS": "6000000.00",  # 30% of 2000万 (002 §三(五))
    "BIO-CHAIN": "12000000.00",  # 30% of 4000万 (002 §五(一))
    "BIO-DIGITAL": "8000000.00",  # 20% of 4000万 (002 §五(二))
    "BIO-UPGRADE": "40000000.00",  # 10% of 4亿 (002 §五(二))
    "BIO-CDMO": "4000000.00",  # 20% of 2000万 (002 §五(三))
    "BIO-FIRST-UNIT": "20000000.00",  # 20% of 1亿 (002 §六(二))
}


@pytest.fixture(scope="module")
def partner(stack: Stack) -> Partner:
    return create_partner(stack.services["intake"].url, OPERATOR_TOKEN, "http://127.0.0.1:9/never")


_RUN = secrets.randbelow(100)


def _registered(program: str, subject: str) -> str:
    """GT-CLIN's and GT-PCT's subjects are registry numbers (POLICY.md, "Subjects"): one per name
    and run (a GT-CLIN project is capped across every hospital, so runs must not share one)."""
    digits = f"{_RUN:02d}{int(hashlib.sha256(subject.encode()).hexdigest(), 16) % 10**6:06d}"
    if program == "GT-CLIN":
        return f"NCT{digits}"
    if program == "GT-PCT":
        return f"PCT/CN2024/{digits[2:]}"
    return subject


def body_for(program: str, applicant: str, subject: str, **over: Any) -> dict[str, Any]:
    kind = "medical_institution" if program == "GT-CLIN" else "enterprise"
    body = make_body(program, applicant={"id": applicant, "kind": kind})
    body["subject"] = _registered(program, subject)
    facts = over.pop("facts", None)
    if facts:
        body["facts"].update(facts)
    body.update(over)
    return body


def test_one_application_per_program_gets_the_policy_entitlement(partner: Partner) -> None:
    ids = {}
    for program in EXPECTED:
        kind = "medical_institution" if program == "GT-CLIN" else "enterprise"
        r = partner.post(body_for(program, random_uscc(kind), f"{program}-ONE"))
        assert r.status_code == 202, r.text
        ids[program] = r.json()["id"]
    for program, app_id in ids.items():
        got = partner.wait_final(app_id)
        assert got["status"] == "approved", (program, got["decision"])
        assert got["decision"]["entitlement"] == EXPECTED[program], program
        assert got["decision"]["awarded"] == EXPECTED[program], program


def equity_round(applicant: str, subject: str, year: int, financing: str) -> dict[str, Any]:
    event_date = f"{year}-03-18"
    return body_for(
        "GT-EQUITY",
        applicant,
        subject,
        year=year,
        facts={"event_date": event_date, "financing_received": financing},
    )


def test_three_equity_rounds_stack_against_the_enterprise_year_cap(partner: Partner) -> None:
    ent = random_uscc()
    outcomes = []
    for i, year in enumerate([2024, 2024, 2024, 2025]):
        app_id = partner.post(equity_round(ent, f"ROUND-{i}", year, "300000000.00")).json()["id"]
        outcomes.append(partner.wait_final(app_id))  # one at a time: the order is the point
    assert [(o["status"], o["decision"]["awarded"]) for o in outcomes] == [
        ("approved", "6000000.00"),
        ("partially_approved", "4000000.00"),
        ("rejected", "0.00"),
        ("approved", "6000000.00"),
    ]
    assert outcomes[1]["decision"]["limited_by"] == "GT-EQUITY/beneficiary-year"
    assert outcomes[1]["decision"]["reasons"][0]["code"] == "CAP_PARTLY_USED"
    assert outcomes[2]["decision"]["reasons"][0]["code"] == "CAP_EXHAUSTED"


def test_eleven_clinical_projects_fill_the_institution_cap(partner: Partner) -> None:
    hospital = random_uscc("medical_institution")
    awarded = 0
    for i in range(11):
        body = body_for("GT-CLIN", hospital, f"PROJ-{i}", facts={"enrolled_subjects": 10})
        awarded += parse_amount(partner.wait_final(partner.post(body).json()["id"])["decision"]["awarded"])
    assert format_fen(awarded) == "5000000.00"


def test_a_higher_later_program_tops_up_and_a_lower_one_is_a_duplicate(partner: Partner) -> None:
    ent = random_uscc()
    gene = body_for("GT-PRODUCT", ent, "PRODUCT-X", requested_amount="8000000.00")
    cell = body_for("CT-PRODUCT", ent, "PRODUCT-X", requested_amount="12000000.00")
    lower = body_for("CT-PRODUCT", ent, "PRODUCT-X", requested_amount="5000000.00", year=2024)
    first = partner.wait_final(partner.post(gene).json()["id"])
    second = partner.wait_final(partner.post(cell).json()["id"])
    third = partner.wait_final(partner.post(lower).json()["id"])
    assert first["decision"]["awarded"] == "8000000.00"
    assert second["decision"]["awarded"] == "4000000.00"
    assert "TOP_UP" in {r["code"] for r in second["decision"]["reasons"]}
    assert third["status"] == "rejected"
    assert [r["code"] for r in third["decision"]["reasons"]] == ["DUPLICATE"]


def test_a_revoked_award_frees_its_pools_for_the_next_application(partner: Partner, stack: Stack) -> None:
    ent = random_uscc()
    ledger = stack.services["ledger"].url
    big = partner.wait_final(partner.post(equity_round(ent, "R-A", 2024, "500000000.00")).json()["id"])
    assert big["decision"]["awarded"] == "10000000.00"  # 2% of 5亿, the whole 1000万 pool
    blocked = partner.wait_final(partner.post(equity_round(ent, "R-B", 2024, "100000000.00")).json()["id"])
    assert blocked["status"] == "rejected"
    r = httpx.post(f"{ledger}/v1/awards/{big['id']}/revoke", json={"reason": "fraudulent filing"}, headers=OP)
    assert r.status_code == 200, r.text
    again = httpx.post(f"{ledger}/v1/awards/{big['id']}/revoke", json={"reason": "twice"}, headers=OP)
    assert again.status_code == 200 and again.json() == r.json()
    after = partner.wait_final(partner.post(equity_round(ent, "R-C", 2024, "100000000.00")).json()["id"])
    assert after["decision"]["awarded"] == "2000000.00"
    revoked = partner.get(big["id"])
    assert revoked["status"] == "revoked"


def test_two_hundred_concurrent_applications_fill_the_pool_exactly(partner: Partner, stack: Stack) -> None:
    ent = random_uscc()
    # 2% of 61,728,394.50 = 1,234,567.89 each: the 1000万 pool holds 8 of them and a partial ninth.
    bodies = [equity_round(ent, f"BULK-{i:03d}", 2024, "61728394.50") for i in range(200)]
    ids = asyncio.run(partner.post_many(bodies, concurrency=16))
    decisions = [partner.wait_final(app_id, timeout_s=120) for app_id in ids]
    total = sum(parse_amount(d["decision"]["awarded"]) for d in decisions)
    assert format_fen(total) == "10000000.00"
    assert sum(1 for d in decisions if d["status"] == "partially_approved") == 1
    balances = httpx.get(
        f"{stack.services['ledger'].url}/v1/balances",
        params={"beneficiary": ent, "year": "2024"},
        headers=AUD,
    ).json()["items"]
    pool = [b for b in balances if b["pool"] == "GT-EQUITY/beneficiary-year"]
    assert pool == [{**pool[0], "cap": "10000000.00", "committed": "10000000.00", "available": "0.00"}]
    verify = httpx.get(f"{stack.services['ledger'].url}/v1/audit/verify", headers=AUD).json()
    assert verify["ok"] is True
