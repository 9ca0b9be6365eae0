"""The public announcement page (公示) in a real browser: notify runs as its own process
against real PostgreSQL and the broker, an `award.decided` whose applicant name carries
markup goes in through Kafka, and Debian's chromium (driven by Playwright) must show that
name as text, run no script and raise no dialog; a citizen then objects through the page's form.
Saves test-artifacts/announcements.png and objection-received.png.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package (never
`playwright install`); skipped with the reason when either is missing.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, skip_without_browser
from tests.support.processes import ARTIFACTS, service_process
from tests.support.waiting import eventually

skip_without_browser()

from aiokafka import AIOKafkaProducer  # noqa: E402
from playwright.async_api import Dialog, async_playwright  # noqa: E402

from shared.contracts.envelope import new_event  # noqa: E402
from shared.contracts.topics import AWARDS  # noqa: E402

pytestmark = pytest.mark.e2e

HOSTILE_NAME = "<script>alert(1)</script>上海某某生物科技有限公司"
IMG_NAME = '"><img src=x onerror="document.title=\'pwned\'">复旦某某医院'


@pytest.fixture(scope="module")
def notify_process(fresh_db_dsn: str, kafka_bootstrap: str, topic_namespace: str) -> Iterator[str]:
    overrides = {"GRANTLINE_NOTICE_PERIOD_SECONDS": "3600", "GRANTLINE_LOG_LEVEL": "WARNING"}
    with service_process("notify", fresh_db_dsn, kafka_bootstrap, topic_namespace, overrides,
                         "notify-e2e.log") as base:
        yield base


def _decision(name: str, amount: str, subject: str) -> tuple[bytes, bytes]:
    app_id = "app_" + uuid.uuid4().hex
    applicant = "91310115MA" + secrets.token_hex(4).upper()
    event = new_event(
        "award.decided",
        source="grantline.ledger",
        subject=app_id,
        data={
            "application_id": app_id,
            "partner_id": "ptn_e2e",
            "program": "GT-EQUITY",
            "year": 2024,
            "applicant": {"id": applicant, "name": name},
            "subject": subject,
            "status": "approved",
            "entitlement": amount,
            "awarded": amount,
            "limited_by": None,
            "reasons": [],
            "top_up_of": None,
            "draws": [],
            "catalog_version": "e2e",
        },
    )
    return applicant.encode(), event.to_bytes()


async def test_announcement_page_shows_hostile_names_as_text(
    notify_process: str, kafka_bootstrap: str, topic_namespace: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for name, amount, subject in (
            (HOSTILE_NAME, "400000.00", "ROUND-2024-B"),
            (IMG_NAME, "123456.78", "R&D <b>bold</b>"),
        ):
            key, value = _decision(name, amount, subject)
            await producer.send_and_wait(topic_namespace + AWARDS, value, key=key)
    finally:
        await producer.stop()

    async with httpx.AsyncClient(base_url=notify_process) as client:

        async def announced() -> list[dict]:
            return list((await client.get("/v1/announcements", params={"year": 2024})).json()["items"])

        items = await eventually(announced, "the decisions announced", timeout_s=30, every_s=0.2,
                                 until=lambda items: len(items) >= 2)
    assert {i["applicant_name"] for i in items} == {HOSTILE_NAME, IMG_NAME}

    dialogs: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720}, locale="zh-CN")

            async def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            response = await page.goto(f"{notify_process}/announcements?year=2024", wait_until="load")
            assert response is not None and response.status == 200
            await page.wait_for_selector("table#announcements tbody tr")
            await page.wait_for_timeout(300)  # anything that would run has run by now

            heading = await page.text_content("h1")
            assert heading is not None and "资助公示" in heading and "Public notice" in heading
            headers = await page.locator("thead th").all_text_contents()
            assert any("申请单位" in h and "Applicant" in h for h in headers)
            assert any("金额" in h and "Amount" in h for h in headers)

            names = await page.locator(".applicant").all_text_contents()
            assert HOSTILE_NAME in names and IMG_NAME in names
            subjects = await page.locator("td.subject").all_text_contents()
            assert "R&D <b>bold</b>" in subjects
            assert any(a.startswith("40万元") for a in await page.locator("td.amount").all_text_contents())

            assert await page.evaluate("document.querySelectorAll('script').length") == 0
            assert await page.evaluate("document.querySelectorAll('main img, main b').length") == 0
            assert await page.title() != "pwned"
            assert dialogs == []

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "announcements.png"), full_page=True)

            # A citizen objects through the page's form (no script): the answer is a page.
            row = page.locator("tr", has_text="ROUND-2024-B")
            await row.locator("summary").click()
            form = row.locator("form.objection")
            await form.locator("input[name=name]").fill("张三")
            await form.locator("input[name=contact]").fill("13800000000")
            await form.locator("textarea[name=statement]").fill("<img src=x onerror=alert(3)>申报材料与事实不符")
            async with page.expect_navigation():
                await form.locator("button[type=submit]").click()
            assert "异议已受理" in (await page.text_content("h1") or "")
            assert "obj_" in (await page.text_content("main") or "")
            assert "张三" not in await page.content() and "13800000000" not in await page.content()
            await page.screenshot(path=str(ARTIFACTS / "objection-received.png"), full_page=True)
            assert dialogs == []
        finally:
            await browser.close()
    assert (ARTIFACTS / "announcements.png").stat().st_size > 0

    async with httpx.AsyncClient(base_url=notify_process) as client:
        items = (await client.get("/v1/announcements", params={"year": 2024})).json()["items"]
    assert {i["subject"]: i["objections_open"] for i in items} == {"ROUND-2024-B": 1, "R&D <b>bold</b>": 0}
