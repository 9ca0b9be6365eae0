"""The policy's figures and the ledger's caps, through the four services running as processes
(issue 3 and issue 4 acceptance): one application per program, stacked caps, overlap,
revocation, and 200 concurrent applications filling a 1000万 pool exactly. Programs whose review
is required are held for a reviewer first (issue 13): the bootstrap operator, who holds the
reviewer's role, approves them here; a staff reviewer approves 2000万 of a 3000万 hold."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import httpx
import pytest

from shared.kernel.money import format_fen, parse_amount
from shared.policy.catalog import load_catalog
from tests.support.auth import AUD, OP, OPERATOR_TOKEN, bearer
from tests.support.client import Partner, create_partner, random_uscc
from tests.support.processes import Stack
from tests.support.waiting import eventually_sync
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


REVIEW = {code: program.review for code, program in load_catalog().programs.items()}


def settled(partner: Partner, stack: Stack, app_id: str, amount: str | None = None,
            headers: dict[str, str] = OP) -> dict[str, Any]:
    """The application once final: a hold (pending_review) approved first by a reviewer (by default
    the bootstrap operator, who holds the role), for `amount` or the whole hold."""
    decided = partner.wait_decided(app_id)
    if decided["status"] != "pending_review":
        return decided
    body = {"decision": "approve", "reason": "专家评审核定", **({"amount": amount} if amount else {})}
    r = httpx.post(f"{stack.services['ledger'].url}/v1/awards/{app_id}/review", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return partner.wait_final(app_id)


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


def test_one_application_per_program_gets_the_policy_entitlement(partner: Partner, stack: Stack) -> None:
    ids = {}
    for program in EXPECTED:
        kind = "medical_institution" if program == "GT-CLIN" else "enterprise"
        r = partner.post(body_for(program, random_uscc(kind), f"{program}-ONE"))
        assert r.status_code == 202, r.text
        ids[program] = r.json()["id"]
    for program, app_id in ids.items():
        decided = partner.wait_decided(app_id)
        if REVIEW[program] == "required":
            assert decided["status"] == "pending_review", (program, decided["decision"])
            assert (decided["decision"]["held"], decided["decision"]["awarded"]) == (EXPECTED[program], "0.00")
        got = settled(partner, stack, app_id)
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


def test_eleven_clinical_projects_fill_the_institution_cap(partner: Partner, stack: Stack) -> None:
    hospital = random_uscc("medical_institution")
    awarded = 0
    for i in range(11):
        body = body_for("GT-CLIN", hospital, f"PROJ-{i}", facts={"enrolled_subjects": 10})
        awarded += parse_amount(settled(partner, stack, partner.post(body).json()["id"])["decision"]["awarded"])
    assert format_fen(awarded) == "5000000.00"


def test_a_higher_later_program_tops_up_and_a_lower_one_is_a_duplicate(partner: Partner, stack: Stack) -> None:
    ent = random_uscc()
    gene = body_for("GT-PRODUCT", ent, "PRODUCT-X", requested_amount="8000000.00")
    cell = body_for("CT-PRODUCT", ent, "PRODUCT-X", requested_amount="12000000.00")
    lower = body_for("CT-PRODUCT", ent, "PRODUCT-X", requested_amount="5000000.00", year=2024)
    first = settled(partner, stack, partner.post(gene).json()["id"])
    second = settled(partner, stack, partner.post(cell).json()["id"])
    third = settled(partner, stack, partner.post(lower).json()["id"])
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


def test_a_staff_reviewer_approves_2000_wan_of_a_3000_wan_hold(partner: Partner, stack: Stack) -> None:
    """000 §五(四) pays a product up to 3000万 on request, 择优: a person settles how much."""
    intake, ledger = stack.services["intake"].url, stack.services["ledger"].url
    staff = httpx.post(f"{intake}/v1/staff", json={"name": "张三", "roles": ["reviewer"]}, headers=OP, timeout=30)
    assert staff.status_code == 201, staff.text
    reviewer = bearer(staff.json()["api_key"])
    ent = random_uscc()
    app_id = partner.post(body_for("GT-PRODUCT", ent, "PRODUCT-BIG", requested_amount="30000000.00")).json()["id"]
    held = partner.wait_decided(app_id)
    assert (held["status"], held["decision"]["held"], held["decision"]["awarded"]) == (
        "pending_review", "30000000.00", "0.00")
    # The reviewer's key reaches the ledger once staff.registered has (within seconds).
    eventually_sync(lambda: httpx.get(f"{ledger}/v1/reviews", headers=reviewer, timeout=10).status_code == 200,
                    "the reviewer known to the ledger", timeout_s=30)
    queue = httpx.get(f"{ledger}/v1/reviews", params={"program": "GT-PRODUCT", "limit": 200}, headers=reviewer,
                      timeout=10).json()["items"]
    (item,) = [i for i in queue if i["application_id"] == app_id]
    assert (item["entitlement"], item["requested_amount"], item["held"]) == ("30000000.00",) * 3
    assert item["rules"] and all(r["citation"] for r in item["rules"])
    got = settled(partner, stack, app_id, amount="20000000.00", headers=reviewer)
    assert (got["status"], got["decision"]["awarded"]) == ("partially_approved", "20000000.00")
    assert "REVIEW_REDUCED" in {r["code"] for r in got["decision"]["reasons"]}
    assert got["decision"]["review"]["by"] == {"id": staff.json()["id"], "name": "张三"}
    balances = httpx.get(f"{ledger}/v1/balances", params={"beneficiary": ent}, headers=AUD, timeout=10).json()
    assert {(b["pool"], b["committed"], b["held"]) for b in balances["items"]} == {
        ("GT-PRODUCT/subject", "20000000.00", "0.00"), ("GT-PRODUCT/beneficiary-year", "20000000.00", "0.00")}
    again = httpx.post(f"{ledger}/v1/awards/{app_id}/review", json={"decision": "reject", "reason": "二次"},
                       headers=reviewer, timeout=10)
    assert again.status_code == 409
    assert httpx.get(f"{ledger}/v1/audit/verify", headers=AUD, timeout=30).json()["ok"] is True
