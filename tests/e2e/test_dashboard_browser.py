"""The staff dashboard in a real browser: the ledger runs as a real uvicorn process against real
PostgreSQL and the broker; Debian's chromium (driven by Playwright) signs in, sees a beneficiary's pools
and amounts, sees a decision fed through the broker appear without reloading, and revokes an award with
a reason; a reviewer signs in with a staff key and approves 2000万 of a 3000万 hold (核定) with a
reason. Screenshots: test-artifacts/dashboard-*.png.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package (never
`playwright install`); skipped with the reason when either is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, skip_without_browser
from tests.support.processes import ARTIFACTS, service_process
from tests.support.waiting import eventually

skip_without_browser()

from aiokafka import AIOKafkaProducer  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from shared.contracts.topics import ASSESSMENTS  # noqa: E402
from shared.db.engine import make_engine, make_sessionmaker  # noqa: E402
from tests.support.ledger import assessed, new_applicant, new_staff, receipt  # noqa: E402

pytestmark = pytest.mark.e2e

TOKEN = "dashboard-e2e-operator-token-0123456789"
NAME = "<img src=x onerror=alert(1)>上海某某生物科技有限公司"


@pytest.fixture(scope="module")
def ledger_db(fresh_db_dsn: str) -> str:
    return fresh_db_dsn


@pytest.fixture(scope="module")
def ledger_url(fresh_db_dsn: str, kafka_bootstrap: str, topic_namespace: str) -> Iterator[str]:
    overrides = {"GRANTLINE_OPERATOR_TOKEN": TOKEN, "GRANTLINE_LOG_LEVEL": "WARNING"}
    with service_process("ledger", fresh_db_dsn, kafka_bootstrap, topic_namespace, overrides,
                         "dashboard-e2e-ledger.log") as base:
        yield base


async def _feed(bootstrap: str, namespace: str, receipts: list[dict]) -> None:
    """Assessments onto the broker, as eligibility publishes them; the ledger's consumer decides."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for r in receipts:
            await producer.send_and_wait(
                namespace + ASSESSMENTS, assessed(r).to_bytes(), key=r["applicant"]["id"].encode()
            )
    finally:
        await producer.stop()


async def _wait_awards(base: str, beneficiary: str, count: int) -> list[dict]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:

        async def awards() -> list[dict]:
            return list((await client.get("/v1/awards", params={"beneficiary": beneficiary})).json()["items"])

        return list(await eventually(awards, "the ledger deciding the assessments", timeout_s=30,
                                     until=lambda items: len(items) >= count))


async def test_sign_in_watch_a_decision_arrive_and_revoke(
    ledger_url: str, kafka_bootstrap: str, topic_namespace: str
) -> None:
    ent = new_applicant()
    first = receipt("GT-EQUITY", ent, "ROUND-2024-A", "4000000.00")
    first["applicant"]["name"] = NAME
    await _feed(kafka_bootstrap, topic_namespace, [first])
    await _wait_awards(ledger_url, ent, 1)

    dialogs: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.on("dialog", lambda d: dialogs.append(d.message))

            await page.goto(f"{ledger_url}/dashboard", wait_until="load")
            assert await page.locator("form#login").count() == 1
            assert await page.locator("table#pools").count() == 0, "nothing but the form before sign-in"
            await page.fill("input[name=token]", "wrong-token")
            await page.click("form#login button")
            await page.wait_for_selector("p.error")
            await page.fill("input[name=token]", TOKEN)
            await page.click("form#login button")
            await page.wait_for_selector("table#pools")

            await page.goto(f"{ledger_url}/dashboard?beneficiary={ent}", wait_until="load")
            await page.wait_for_selector("#live:has-text('connected')")
            pool_row = page.locator("table#pools tbody tr").first
            assert NAME in (await pool_row.locator("td.applicant").inner_text())
            assert "GT-EQUITY/beneficiary-year" in await pool_row.inner_text()
            assert await pool_row.locator("td.committed").inner_text() == "400万元"
            assert await pool_row.locator("td.committed").get_attribute("title") == "4,000,000.00元"
            assert await pool_row.locator("td.cap").inner_text() == "1000万元"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-signed-in.png"), full_page=True)

            # A new assessment through the broker and the ledger: it must show up without a reload.
            await page.evaluate("window.__notReloaded = true")
            second = receipt("GT-EQUITY", ent, "ROUND-2024-B", "2500000.00")
            second["applicant"]["name"] = NAME
            await _feed(kafka_bootstrap, topic_namespace, [second])
            row = page.locator(f"table#decisions tbody tr[data-app='{second['application_id']}']")
            await row.wait_for(timeout=20_000)
            assert await row.locator("td.awarded").inner_text() == "250万元"
            await page.wait_for_function(
                "document.querySelector('table#pools tbody tr td.committed').textContent === '650万元'"
            )
            assert await page.evaluate("window.__notReloaded === true"), "the page did not reload"
            await page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

            # Revoke the new award with a reason.
            await row.locator("input[name=reason]").fill("资料不实 <b>forged</b>")
            await row.locator("button", has_text="Revoke").click()
            await page.wait_for_selector("#notice")
            assert "revoked" in (await page.inner_text("#notice")).lower()
            revoked = page.locator(f"table#revocations tbody tr[data-app='{second['application_id']}']")
            assert await revoked.locator("td.reason").inner_text() == "资料不实 <b>forged</b>"
            assert await revoked.locator("td.by").inner_text() == "operator:dashboard"
            assert await page.locator("table#pools tbody tr td.committed").first.inner_text() == "400万元"
            assert await page.evaluate("document.querySelectorAll('main img, main b').length") == 0
            await page.screenshot(path=str(ARTIFACTS / "dashboard-revoked.png"), full_page=True)
        finally:
            await browser.close()
    assert dialogs == []
    items = await _wait_awards(ledger_url, ent, 2)
    by_app = {i["application_id"]: i for i in items}
    assert by_app[second["application_id"]]["status"] == "revoked"
    assert by_app[second["application_id"]]["revocation"]["revoked_by"] == "operator:dashboard"
    for name in ("signed-in", "live", "revoked"):
        assert (ARTIFACTS / f"dashboard-{name}.png").stat().st_size > 0


async def test_a_reviewer_signs_in_with_a_staff_key_and_approves_a_reduced_amount(
    ledger_url: str, ledger_db: str, kafka_bootstrap: str, topic_namespace: str
) -> None:
    engine = make_engine(ledger_db, "ledger")
    try:
        reviewer = await new_staff(make_sessionmaker(engine), "张三", "reviewer")
    finally:
        await engine.dispose()
    ent = new_applicant()
    held = receipt("GT-PRODUCT", ent, "PRODUCT-X", "30000000.00", review="required", requested="30000000.00")
    held["applicant"]["name"] = NAME
    await _feed(kafka_bootstrap, topic_namespace, [held])
    headers = {"Authorization": f"Bearer {reviewer.key}"}
    async with httpx.AsyncClient(base_url=ledger_url, headers=headers) as client:
        await eventually(lambda: client.get("/v1/reviews"), "the hold in the queue", timeout_s=30,
                         until=lambda r: held["application_id"] in r.text)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1500, "height": 900}, locale="zh-CN")
            await page.goto(f"{ledger_url}/dashboard", wait_until="load")
            await page.fill("input[name=token]", reviewer.key)
            await page.click("form#login button")
            await page.wait_for_selector("table#reviews")
            assert "张三" in await page.inner_text("#who")
            assert await page.locator("table#decisions").count() == 0, "a reviewer does not list decisions"
            await page.goto(f"{ledger_url}/dashboard?beneficiary={ent}", wait_until="load")
            row = page.locator(f"table#reviews tbody tr[data-app='{held['application_id']}']")
            assert NAME in await row.locator("td.applicant").inner_text()
            assert await row.locator("td.held").inner_text() == "3000万元"
            assert await row.locator("td.requested").inner_text() == "3000万元"
            await row.locator("details summary").click()
            assert "002 §一(三)" in await row.locator("td.rules").inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-review-queue.png"), full_page=True)

            approve = row.locator("form.approve")
            await approve.locator("input[name=amount]").fill("20000000.00")
            await approve.locator("input[name=reason]").fill("专家评审核定 <b>2000万</b>")
            await approve.locator("button").click()
            await page.wait_for_selector("#notice")
            assert "approved in part" in (await page.inner_text("#notice")).lower()
            assert await page.locator(f"table#reviews tbody tr[data-app='{held['application_id']}']").count() == 0
            committed = page.locator("table#pools tbody tr", has_text=ent).locator("td.committed")
            assert [await c.inner_text() for c in await committed.all()] == ["2000万元", "2000万元"]
            assert await page.evaluate("document.querySelectorAll('main img, main b').length") == 0
            await page.screenshot(path=str(ARTIFACTS / "dashboard-reviewed.png"), full_page=True)
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=ledger_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        balances = (await client.get("/v1/balances", params={"beneficiary": ent})).json()["items"]
        verify = (await client.get("/v1/audit/verify")).json()
    assert {(b["pool"], b["committed"], b["held"]) for b in balances} == {
        ("GT-PRODUCT/subject", "20000000.00", "0.00"), ("GT-PRODUCT/beneficiary-year", "20000000.00", "0.00")}
    assert verify["ok"] is True
    for name in ("review-queue", "reviewed"):
        assert (ARTIFACTS / f"dashboard-{name}.png").stat().st_size > 0
