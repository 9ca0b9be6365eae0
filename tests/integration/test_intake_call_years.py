"""The support year is the call's, end to end (intake, eligibility, ledger in process, real
PostgreSQL and broker): an enterprise that exhausted its 2024 annual cap cannot draw on 2025's by
filing the same 2024 event again as a 2025 application. The 2025 call admits 2025 events only, so
the refiling is ineligible (OUT_OF_WINDOW) and the 2025 pool is untouched; a real 2025 event still
draws on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from services.eligibility.app import create_app as create_eligibility
from services.intake.app import create_app as create_intake
from services.ledger.app import create_app as create_ledger
from shared.config.settings import Settings
from tests.support.apps import running
from tests.support.auth import AUD, partner_headers
from tests.support.client import random_uscc
from tests.support.intake import fetch_until, new_partner
from tests.support.policy import open_call, wait_for_calls
from tools.samples import make_body

pytestmark = pytest.mark.integration

Apps = dict[str, httpx.AsyncClient]


@pytest.fixture(scope="module")
async def apps(settings: Settings) -> AsyncIterator[Apps]:
    async with AsyncExitStack() as exits:
        clients = {name: await exits.enter_async_context(running(factory(settings)))
                   for name, factory in (("intake", create_intake), ("eligibility", create_eligibility),
                                         ("ledger", create_ledger))}
        # One call a year, each admitting that year's events only.
        calls = [await open_call(clients["eligibility"], "GT-EQUITY", year,
                                 event_window=(f"{year}-01-01", f"{year}-12-31")) for year in (2024, 2025)]
        await wait_for_calls(clients["intake"], {c["id"] for c in calls})
        yield clients


def equity_round(applicant: str, subject: str, year: int, event_date: str) -> dict[str, Any]:
    """300,000,000.00 of financing: a 6,000,000.00 entitlement (2%), the annual cap is 10,000,000.00."""
    return make_body("GT-EQUITY", facts={"event_date": event_date, "financing_received": "300000000.00"},
                     applicant={"id": applicant}, subject=subject, year=year)


async def decided(apps: Apps, partner: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    intake = apps["intake"]
    key = f"{body['subject']}-{body['year']}"
    r = await intake.post("/v1/applications", json=body, headers=partner_headers(partner, key))
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]
    return dict(await fetch_until(intake, f"/v1/applications/{app_id}", partner_headers(partner),
                                  lambda b: b["status"] != "received", timeout_s=30))


async def committed(apps: Apps, applicant: str, year: int) -> list[tuple[str, str]]:
    """(pool, committed) of the applicant's pools for `year`."""
    page = (await apps["ledger"].get("/v1/balances", params={"beneficiary": applicant, "year": year},
                                     headers=AUD)).json()
    return [(p["pool"], p["committed"]) for p in page["items"]]


async def test_the_same_event_filed_under_two_support_years_draws_on_the_calls_year_only(apps: Apps) -> None:
    partner = await new_partner(apps["intake"])
    ent = random_uscc()
    first = await decided(apps, partner, equity_round(ent, "ROUND-A", 2024, "2024-03-18"))
    second = await decided(apps, partner, equity_round(ent, "ROUND-B", 2024, "2024-06-01"))
    assert [(d["status"], d["decision"]["awarded"]) for d in (first, second)] == [
        ("approved", "6000000.00"), ("partially_approved", "4000000.00")]
    assert second["decision"]["limited_by"] == "GT-EQUITY/beneficiary-year"

    # ROUND-B's 2024 event again, as a 2025 application: the 2025 call is open, so intake accepts
    # it, and decides nothing; the 2025 call's window does not admit a 2024 event.
    refiled = await decided(apps, partner, equity_round(ent, "ROUND-B", 2025, "2024-06-01"))
    assert refiled["call_id"] != second["call_id"]
    assert refiled["status"] == "ineligible" and refiled["decision"]["awarded"] == "0.00"
    assert [r["code"] for r in refiled["decision"]["reasons"]] == ["OUT_OF_WINDOW"]
    assert await committed(apps, ent, 2024) == [("GT-EQUITY/beneficiary-year", "10000000.00")]
    assert {amount for _, amount in await committed(apps, ent, 2025)} <= {"0.00"}  # untouched

    # A 2025 event draws on 2025.
    fresh = await decided(apps, partner, equity_round(ent, "ROUND-C", 2025, "2025-03-18"))
    assert (fresh["status"], fresh["decision"]["awarded"]) == ("approved", "6000000.00")
    assert await committed(apps, ent, 2025) == [("GT-EQUITY/beneficiary-year", "6000000.00")]
