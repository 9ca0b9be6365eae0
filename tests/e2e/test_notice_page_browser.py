"""The 公示 page in a real browser (issue 16): notify runs as its own process against real
PostgreSQL and the broker, with a notice as the consumer and the finaliser write it (final
awards of 2024, running notices, revoked ones), and Debian's chromium (driven by Playwright)
reads it as a citizen does: Beijing-time strings, Chinese program names with their 文号, the
calls' titles (申报批次, from notify's replica of call.opened) heading their groups and 万元
amounts are on the screen, final awards are marked, the filter form works without script, the
log index opens its inclusion proof and the open data downloads as a UTF-8 CSV.

Screenshots: test-artifacts/screenshots/notice-page.png (the whole page),
notice-page-filtered.png (after filtering by year with the form) and notice-page-objection.png
(the objection form opened on a running notice).

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package (never
`playwright install`); skipped with the reason when either is missing.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, skip_without_browser
from tests.support.processes import ARTIFACTS, service_process
from tests.support.waiting import eventually

skip_without_browser()

from playwright.async_api import Dialog, Page, async_playwright  # noqa: E402

from shared.db.engine import make_engine, make_sessionmaker  # noqa: E402
from shared.web.display import program_label  # noqa: E402
from tests.support.notice import EQUITY_TITLE, PRODUCT_TITLE, Seeded, seed  # noqa: E402

pytestmark = pytest.mark.e2e

SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def notify_process(fresh_db_dsn: str, kafka_bootstrap: str, topic_namespace: str) -> Iterator[str]:
    overrides = {"GRANTLINE_LOG_LEVEL": "WARNING"}
    with service_process("notify", fresh_db_dsn, kafka_bootstrap, topic_namespace, overrides,
                         "notice-page-e2e.log") as base:
        yield base


@pytest.fixture(scope="module")
async def seeded(notify_process: str, fresh_db_dsn: str) -> AsyncIterator[Seeded]:
    engine = make_engine(fresh_db_dsn, "notify")
    try:
        done = await seed(make_sessionmaker(engine), datetime.now(UTC), finaliser_running=True)
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=notify_process) as http:

        async def final() -> int:
            resp = await http.get("/v1/announcements", params={"status": "final", "limit": 1000})
            return len(resp.json()["items"])

        # The instance's own finaliser may have taken some and commits on its own time.
        await eventually(final, "the 2024 awards final", timeout_s=30, every_s=0.2,
                         until=lambda n: n >= len(done.final))
    yield done


async def _shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


async def test_a_citizen_reads_the_notice_in_beijing_time_with_chinese_program_names(
    notify_process: str, seeded: Seeded
) -> None:
    dialogs: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                                accept_downloads=True)
            page = await context.new_page()

            async def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            response = await page.goto(f"{notify_process}/announcements", wait_until="load")
            assert response is not None and response.status == 200
            await page.wait_for_selector("table#announcements tbody tr[data-announcement]")

            # What is on the screen, as a reader sees it.
            seen = await page.inner_text("body")
            for text in ("资助公示", "2024-05-01 16:00", "2024-05-01 17:00", "3000万元", "30,000,000.00元",
                         "1.5亿元", "已确定 final", "公示中 under_notice", "2025年度", "2024年度",
                         program_label("GT-EQUITY"), program_label("GT-CLIN"), program_label("GT-PRODUCT")):
                assert text in seen, text
            assert "+00:00" not in seen and "GT-EQUITY · support year 2024" in seen
            groups = await page.locator("tbody[data-program] th[scope=rowgroup]").all_inner_texts()
            # By program and call: the program with its 文号, then the call's title; the awards from
            # before calls were passed on under their support year.
            assert groups[0].startswith(program_label("GT-PRODUCT") + " · " + PRODUCT_TITLE), groups
            assert groups[1].startswith(program_label("GT-EQUITY") + " · " + EQUITY_TITLE), groups
            assert any(g.startswith(program_label("GT-CLIN") + " · 2024年度") for g in groups), groups
            final_row = page.locator("tr.final", has_text="FINAL-EQ-3000W")
            assert await final_row.locator(".badge.final").is_visible()
            assert await final_row.locator("form").count() == 0
            assert await page.evaluate("document.querySelectorAll('script').length") == 0
            whole = await _shot(page, "notice-page")

            # A running notice offers the form to object (no script: <details>).
            running = page.locator("tr.under_notice", has_text="RUNNING-EQ-A")
            await running.locator("summary").click()
            assert await running.locator("form.objection textarea[name=statement]").is_visible()
            await _shot(page, "notice-page-objection")

            # The filter form is a plain GET form: choose a year, submit, the page reloads filtered.
            await page.select_option("select#filter-year", "2025")
            async with page.expect_navigation():
                await page.click("form.filters button[type=submit]")
            assert "year=2025" in page.url
            subjects = await page.locator("tr[data-announcement] td.subject").all_inner_texts()
            assert subjects == ["RUNNING-PRODUCT-2025"]
            assert "2000万元" in await page.inner_text("table#announcements")
            await _shot(page, "notice-page-filtered")

            # The log index opens its inclusion proof.
            href = await page.locator("tr[data-announcement] td.log a").get_attribute("href")
            assert href is not None and href.startswith("/v1/transparency/proof/inclusion?index=")
            async with httpx.AsyncClient(base_url=notify_process) as http:
                assert (await http.get(href)).status_code == 200

            # The open data downloads: UTF-8 with a BOM, the final awards in it.
            async with page.expect_download() as info:
                await page.click("a[href='/v1/open-data/awards.csv']")
            download = await info.value
            raw = await asyncio.to_thread(Path(await download.path()).read_bytes)
            assert raw.startswith(b"\xef\xbb\xbf") and download.suggested_filename == "grantline-awards-final.csv"
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
            assert Seeded.subjects(seeded.final) <= {r["subject"] for r in rows}
            assert not Seeded.subjects(seeded.running) & {r["subject"] for r in rows}
            assert dialogs == []
        finally:
            await browser.close()
    assert whole == SCREENSHOTS / "notice-page.png"
