"""The dashboard's charts, review queue, payment pages and exports in a real browser: the ledger as
a uvicorn process against real PostgreSQL and the broker, fed through the broker (assessments,
payees, finalisations); Debian's chromium (Playwright) signs in with the operator token, sees the
three charts drawn as inline SVG with no console error (the CSP forbids inline script: a chart
that needed one would be reported), Beijing times and Chinese program names with their 文号, pages
on through the pools, searches an applicant, sees the payment batches and orders, and downloads
the awards XLSX from its link: opened with openpyxl, its sum equals /v1/awards'.

Screenshots: test-artifacts/screenshots/dashboard-{charts,review-queue,payments,search}.png.
The objections page is notify's (tests/e2e/test_review_objection_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, skip_without_browser
from tests.support.processes import ARTIFACTS, service_process
from tests.support.waiting import eventually

skip_without_browser()

from aiokafka import AIOKafkaProducer  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS, ASSESSMENTS  # noqa: E402
from tests.support.exports import column, xlsx_rows, yuan_sum  # noqa: E402
from tests.support.ledger import assessed, new_applicant, receipt  # noqa: E402
from tests.support.payments import finalized, payee, received_with_payee  # noqa: E402

pytestmark = pytest.mark.e2e

TOKEN = "dashboard-pages-e2e-operator-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SHOTS = ARTIFACTS / "screenshots"
NAMES = ("上海甲生物科技有限公司", "上海乙医药有限公司", "上海丙基因技术有限公司")


@pytest.fixture(scope="module")
def ledger_url(fresh_db_dsn: str, kafka_bootstrap: str, topic_namespace: str) -> Iterator[str]:
    overrides = {"GRANTLINE_OPERATOR_TOKEN": TOKEN, "GRANTLINE_LOG_LEVEL": "WARNING"}
    with service_process("ledger", fresh_db_dsn, kafka_bootstrap, topic_namespace, overrides,
                         "dashboard-pages-e2e-ledger.log") as base:
        yield base


async def _publish(bootstrap: str, sends: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for topic, key, value in sends:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _seed(base: str, bootstrap: str, ns: str) -> dict[str, Any]:
    """Three applicants: an auto award each (the first two finalized, the first with a payee), and
    a hold under one call's budget each; then a payment batch of the ready order."""
    awards, holds = [], []
    for i, name in enumerate(NAMES):
        ent = new_applicant()
        r = receipt("GT-EQUITY", ent, f"ROUND-E2E-{i}", f"{(i + 1) * 1000000}.{i:02d}", review="auto")
        h = receipt("GT-PRODUCT", ent, f"PRODUCT-E2E-{i}", "5000000.00", review="required", requested="5000000.00",
                    call=("call_e2e_2024", "20000000.00"))
        r["applicant"]["name"] = h["applicant"]["name"] = name
        awards.append(r)
        holds.append(h)
    key = awards[0]["applicant"]["id"].encode()
    await _publish(bootstrap, [(ns + APPLICATIONS, key, received_with_payee(awards[0], payee("6222020000004321",
                                                                                               NAMES[0])).to_bytes())])
    await _publish(bootstrap, [(ns + ASSESSMENTS, r["applicant"]["id"].encode(), assessed(r).to_bytes())
                               for r in awards + holds])
    async with httpx.AsyncClient(base_url=base, headers=HEADERS) as client:
        await eventually(lambda: client.get("/v1/awards", params={"limit": 200}), "six decisions", timeout_s=30,
                         until=lambda resp: len(resp.json()["items"]) == 6)
        await _publish(bootstrap, [(ns + ANNOUNCEMENTS, r["applicant"]["id"].encode(),
                                    finalized(r, r["entitlement"]).to_bytes()) for r in awards[:2]])
        await eventually(lambda: client.get("/v1/payment-orders"), "two payment orders", timeout_s=30,
                         until=lambda resp: len(resp.json()["items"]) == 2)
        batch = await client.post("/v1/payment-batches", json={})
        assert batch.status_code == 201, batch.text
        return {"awards": awards, "holds": holds, "batch": batch.json()["id"]}


async def test_charts_pages_search_and_an_export_in_a_browser(
    ledger_url: str, kafka_bootstrap: str, topic_namespace: str
) -> None:
    seeded = await _seed(ledger_url, kafka_bootstrap, topic_namespace)
    SHOTS.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN",
                                                accept_downloads=True)
            page = await context.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            await page.goto(f"{ledger_url}/dashboard", wait_until="load")
            await page.fill("input[name=token]", TOKEN)
            await page.click("form#login button")
            await page.wait_for_selector("table#pools")

            await page.goto(f"{ledger_url}/dashboard?year=2024", wait_until="load")
            for chart in ("chart-pools", "chart-programs", "chart-calls"):
                svg = page.locator(f"svg#{chart}")
                assert await svg.count() == 1 and await svg.is_visible(), chart
                box = await svg.bounding_box()
                assert box and box["width"] > 300 and box["height"] > 40, chart
            assert await page.locator("svg#chart-pools rect.used").count() >= 3
            assert await page.locator("svg#chart-programs circle.point").count() >= 2
            calls = await page.locator("svg#chart-calls").inner_html()
            assert "call_e2e_2024" in calls and "1500万元 / 2000万元 · 75.0%" in calls
            assert "基因治疗企业股权融资资助（沪科规〔2023〕10号）" in await page.locator("svg#chart-programs").inner_html()
            await page.locator("#charts").screenshot(path=str(SHOTS / "dashboard-charts.png"))

            queue = page.locator("table#reviews tbody tr")
            assert await queue.count() == 3
            first = await queue.first.inner_text()
            assert re.search(r"2024-06-01 17:\d\d", first) and "万元" in first and "沪科规〔2023〕10号" in first
            await page.locator("table#reviews").screenshot(path=str(SHOTS / "dashboard-review-queue.png"))

            batches = page.locator(f"table#batches tr[data-batch='{seeded['batch']}']")
            assert "已创建 created" in await batches.inner_text()
            orders = page.locator("table#orders tbody tr")
            assert await orders.count() == 2
            assert "待补收款账户 awaiting_payee" in await page.locator("table#orders").inner_text()
            await page.locator("h2#payments").scroll_into_view_if_needed()
            await page.screenshot(path=str(SHOTS / "dashboard-payments.png"), full_page=True)

            # Pages: two pools a page, on until there is no next page; every pool seen once.
            await page.goto(f"{ledger_url}/dashboard?rows=2", wait_until="load")
            seen: list[str] = []
            for _ in range(30):
                seen += [await tr.get_attribute("data-account") or ""
                         for tr in await page.locator("table#pools tbody tr").all()]
                nxt = page.locator("nav.pager[data-for=pools_after] a[rel=next]")
                if await nxt.count() == 0:
                    break
                await nxt.click()
                await page.wait_for_load_state("load")
            async with httpx.AsyncClient(base_url=ledger_url, headers=HEADERS) as client:
                balances = (await client.get("/v1/balances", params={"limit": 200})).json()["items"]
            assert len(seen) == len(set(seen)) == len(balances) > 2

            await page.goto(f"{ledger_url}/dashboard", wait_until="load")
            await page.fill("input#search", "乙医药")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_selector("table#applicants")
            found = await page.locator("table#applicants").inner_text()
            assert NAMES[1] in found and NAMES[0] not in found
            await page.screenshot(path=str(SHOTS / "dashboard-search.png"), full_page=True)

            # The awards export from its link, opened as a spreadsheet program would.
            await page.goto(f"{ledger_url}/dashboard?year=2024", wait_until="load")
            async with page.expect_download() as info:
                await page.click("#export-awards-xlsx")
            download = await info.value
            path = SHOTS.parent / "dashboard-awards-2024.xlsx"
            await download.save_as(str(path))
        finally:
            await browser.close()
    header, rows, _ = xlsx_rows(path.read_bytes())
    async with httpx.AsyncClient(base_url=ledger_url, headers=HEADERS) as client:
        api = (await client.get("/v1/awards", params={"year": 2024, "limit": 200})).json()["items"]
    amount = column(header, "Amount (CNY)")
    assert len(rows) == len(api) == 6
    assert yuan_sum(r[amount] for r in rows) == sum((Decimal(a["amount"]) for a in api), Decimal(0))
    assert console == [], console
    for name in ("charts", "review-queue", "payments", "search"):
        assert (SHOTS / f"dashboard-{name}.png").stat().st_size > 0
