"""People in the loop, end to end in a real browser (issue 13): the four services run as processes
against real PostgreSQL and the broker, and Debian's chromium (driven by Playwright) does what the
people do. An admin (registered by the bootstrap operator) creates a reviewer and a partner; the
partner applies under GT-PRODUCT asking 3000万 (review required: held pending_review); the reviewer
signs in on the ledger's dashboard with the staff key and approves 2000万 with a reason; a citizen
objects on notify's 公示 page; the reviewer follows the dashboard's link to notify's objections page,
signs in there and dismisses the objection with a reason. The notice period is short
(GRANTLINE_NOTICE_PERIOD_SECONDS), so the award is finalized once the objection no longer holds it;
every state is asserted through the APIs. Screenshots: test-artifacts/review-flow-*.png.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package (never
`playwright install`); skipped with the reason when either is missing.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, skip_without_browser
from tests.support.processes import ARTIFACTS, Stack, four_services
from tests.support.waiting import eventually

skip_without_browser()

from playwright.async_api import Locator, Page, async_playwright  # noqa: E402

from tests.support.auth import AUD, OP, bearer  # noqa: E402
from tests.support.client import random_uscc  # noqa: E402
from tools.samples import make_body  # noqa: E402

pytestmark = pytest.mark.e2e

# Long enough for the citizen to object while it runs, short enough to end within the test: the
# award is finalized when it ends with the objection dismissed (or at once, if it ended before).
NOTICE_SECONDS = 40
APPLICANT = "上海某某基因治疗有限公司"
STATEMENT = "<b>申报材料与事实不符</b>：该产品尚未取得临床批件。"
OBJECTOR, CONTACT = "王公民", "13900000000"


@pytest.fixture(scope="module")
def stack(pg_admin_dsn: str, kafka_bootstrap: str) -> Iterator[Stack]:
    with four_services(pg_admin_dsn, kafka_bootstrap, "review-e2e", {
        "GRANTLINE_NOTICE_PERIOD_SECONDS": str(NOTICE_SECONDS),
        "GRANTLINE_LOG_LEVEL": "WARNING",
    }) as stack:
        yield stack


async def _get(http: httpx.AsyncClient, url: str, headers: dict[str, str], what: str,
               until: Any, **params: Any) -> Any:
    """The JSON of GET `url` once `until(body)` holds."""

    async def body() -> Any:
        resp = await http.get(url, headers=headers, params=params)
        return resp.json() if resp.status_code == 200 else None

    return await eventually(body, what, timeout_s=60, every_s=0.2, until=lambda b: b is not None and until(b))


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"review-flow-{name}.png"), full_page=True)


async def _sign_in(page: Page, key: str, ready: str) -> None:
    """The staff sign-in form the page shows before anything else, then the page itself (`ready`)."""
    await page.wait_for_selector("form#login")
    await page.fill("input[name=token]", key)
    await page.click("form#login button")
    await page.wait_for_selector(ready)


async def _act(page: Page, form: Locator, fields: dict[str, str], says: str) -> None:
    """Fill `form` (a select by its option's value), send it, and read `says` in the page's notice."""
    for name, value in fields.items():
        control = form.locator(f"[name={name}]")
        if await control.evaluate("e => e.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)
    await form.locator("button").click()
    await page.wait_for_selector("#notice")
    assert says in (await page.inner_text("#notice")).lower()


async def test_a_reviewer_approves_2000_wan_of_3000_wan_and_dismisses_an_objection(stack: Stack) -> None:
    intake, ledger, notify = (stack.services[name].url for name in ("intake", "ledger", "notify"))
    async with httpx.AsyncClient(timeout=30) as http:
        # An admin creates the reviewer and registers the partner.
        admin = await http.post(f"{intake}/v1/staff", json={"name": "李管理", "roles": ["admin"]}, headers=OP)
        assert admin.status_code == 201, admin.text
        as_admin = bearer(admin.json()["api_key"])
        made = await http.post(f"{intake}/v1/staff", json={"name": "张审核", "roles": ["reviewer"]}, headers=as_admin)
        assert made.status_code == 201, made.text
        reviewer_id, key = made.json()["id"], made.json()["api_key"]
        as_reviewer = bearer(key)
        registered = await http.post(f"{intake}/v1/partners", headers=as_admin,
                                     json={"name": "某某申报平台", "callback_url": "http://127.0.0.1:9/never"})
        assert registered.status_code == 201, registered.text
        as_partner = bearer(registered.json()["api_key"])

        # The partner applies under GT-PRODUCT asking 3000万: held for review (核定).
        subject = f"PRODUCT-{secrets.token_hex(4).upper()}"
        body = make_body("GT-PRODUCT", applicant={"id": random_uscc(), "name": APPLICANT}, subject=subject,
                         requested_amount="30000000.00")
        sent = await http.post(f"{intake}/v1/applications", json=body,
                               headers={**as_partner, "Idempotency-Key": str(uuid.uuid4())})
        assert sent.status_code == 202, sent.text
        app_id = sent.json()["id"]
        application = f"{intake}/v1/applications/{app_id}"
        held = await _get(http, application, as_partner, "held for review",
                          lambda b: b["status"] == "pending_review")
        assert (held["decision"]["held"], held["decision"]["awarded"]) == ("30000000.00", "0.00")
        # The reviewer's key reaches the ledger and notify with staff.registered (within seconds).
        await _get(http, f"{ledger}/v1/reviews", as_reviewer, "the hold in the reviewer's queue",
                   lambda b: app_id in {i["application_id"] for i in b["items"]}, program="GT-PRODUCT", limit=200)
        await _get(http, f"{notify}/v1/objections", as_reviewer, "the reviewer known to notify", lambda b: True)

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                staff = await browser.new_context(viewport={"width": 1500, "height": 900}, locale="zh-CN")
                public = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
                desk = await staff.new_page()
                dialogs: list[str] = []
                desk.on("dialog", lambda d: dialogs.append(d.message))

                # The reviewer approves 2000万 of the 3000万 hold on the ledger's dashboard.
                await desk.goto(f"{ledger}/dashboard", wait_until="load")
                await _sign_in(desk, key, "table#reviews")
                assert "张审核" in await desk.inner_text("#who")
                row = desk.locator(f"table#reviews tbody tr[data-app='{app_id}']")
                await row.wait_for()
                assert APPLICANT in await row.locator("td.applicant").inner_text()
                assert (await row.locator("td.held").inner_text(), await row.locator("td.requested").inner_text()) == (
                    "3000万元", "3000万元")
                await _shot(desk, "1-review-queue")
                await _act(desk, row.locator("form.approve"),
                           {"amount": "20000000.00", "reason": "专家评审核定：按产品阶段核定 2000万"}, "approved in part")
                assert await desk.locator(f"table#reviews tbody tr[data-app='{app_id}']").count() == 0
                await _shot(desk, "2-approved")

                reviewed = await _get(http, application, as_partner, "the review at intake",
                                      lambda b: b["status"] == "partially_approved")
                assert reviewed["decision"]["awarded"] == "20000000.00"
                assert reviewed["decision"]["review"]["by"] == {"id": reviewer_id, "name": "张审核"}
                announced = await _get(http, f"{notify}/v1/announcements", {}, "the approved award announced",
                                       lambda b: any(i["subject"] == subject for i in b["items"]),
                                       program="GT-PRODUCT", limit=1000)
                [notice] = [i for i in announced["items"] if i["subject"] == subject]
                assert (notice["amount"], notice["status"]) == ("20000000.00", "under_notice")

                # A citizen objects on the 公示 page while the notice runs.
                page = await public.new_page()
                await page.goto(f"{notify}/announcements?program=GT-PRODUCT", wait_until="load")
                public_row = page.locator("table#announcements tbody tr", has_text=subject)
                await public_row.locator("summary").click()
                form = public_row.locator("form.objection")
                await form.locator("input[name=name]").fill(OBJECTOR)
                await form.locator("input[name=contact]").fill(CONTACT)
                await form.locator("textarea[name=statement]").fill(STATEMENT)
                async with page.expect_navigation():
                    await form.locator("button[type=submit]").click()
                assert "异议已受理" in (await page.text_content("h1") or "")
                await _shot(page, "3-objection-filed")

                # The reviewer follows the dashboard's link to notify's objections page and signs in there.
                await desk.goto(f"{ledger}/dashboard", wait_until="load")
                link = desk.locator("nav.pages a#nav-objections")
                assert await link.get_attribute("href") == f"{notify}/staff/objections"
                async with desk.expect_navigation():
                    await link.click()
                await _sign_in(desk, key, "table#objections")
                assert await desk.locator("nav.pages a#nav-ledger").get_attribute("href") == f"{ledger}/dashboard"
                objection = desk.locator(f"table#objections tbody tr[data-app='{app_id}']")
                assert await objection.locator("td.statement").inner_text() == STATEMENT
                assert OBJECTOR in await objection.locator("td.objector").inner_text()
                assert CONTACT in await objection.locator("td.objector").inner_text()
                assert await desk.evaluate("document.querySelectorAll('main b, script').length") == 0
                await _shot(desk, "4-objections")
                await _act(desk, objection.locator("form.resolve"),
                           {"outcome": "dismissed", "reason": "经核查，临床批件已于公示前取得，异议不成立"}, "dismissed")
                assert await desk.locator(f"table#objections tbody tr[data-app='{app_id}']").count() == 0
                await _shot(desk, "5-dismissed")
                async with desk.expect_navigation():
                    await desk.click("nav.status a[href$='status=dismissed']")
                done = desk.locator(f"table#objections tbody tr[data-app='{app_id}']")
                assert "异议不成立" in await done.locator("td.status").inner_text()
                assert "张审核" in await done.locator("td.status").inner_text()
                assert await done.locator("form").count() == 0
                await _shot(desk, "6-dismissed-list")
                assert dialogs == []
            finally:
                await browser.close()

        # Through the APIs: the dismissal recorded with who and why; then the award final everywhere.
        dismissed = await _get(http, f"{notify}/v1/objections", as_reviewer, "the dismissed objection",
                               lambda b: any(o["application_id"] == app_id for o in b["items"]),
                               status="dismissed", limit=200)
        [resolved] = [o for o in dismissed["items"] if o["application_id"] == app_id]
        assert (resolved["name"], resolved["contact"], resolved["statement"]) == (OBJECTOR, CONTACT, STATEMENT)
        assert resolved["resolution"]["by"] == {"id": reviewer_id, "name": "张审核"}
        assert resolved["resolution"]["reason"] == "经核查，临床批件已于公示前取得，异议不成立"
        final = await _get(http, application, as_partner, "award.finalized at intake",
                           lambda b: (b["announcement"] or {}).get("finalized_at") is not None)
        assert final["status"] == "partially_approved" and final["decision"]["awarded"] == "20000000.00"
        assert final["announcement"]["objections_open"] == 0
        finalized_at = datetime.fromisoformat(final["announcement"]["finalized_at"])
        assert finalized_at >= datetime.fromisoformat(resolved["resolution"]["at"]), "held until the dismissal"
        assert "award.finalized" in [t["type"] for t in final["timeline"]]
        listed = (await http.get(f"{notify}/v1/announcements", params={"program": "GT-PRODUCT", "limit": 1000}))
        [public_notice] = [i for i in listed.json()["items"] if i["subject"] == subject]
        assert public_notice["status"] == "final" and public_notice["finalized_at"] is not None
        assert OBJECTOR not in listed.text and CONTACT not in listed.text
        balances = (await http.get(f"{ledger}/v1/balances", params={"beneficiary": body["applicant"]["id"]},
                                   headers=AUD)).json()["items"]
        assert {(b["pool"], b["committed"], b["held"]) for b in balances} == {
            ("GT-PRODUCT/subject", "20000000.00", "0.00"), ("GT-PRODUCT/beneficiary-year", "20000000.00", "0.00")}
        assert (await http.get(f"{ledger}/v1/audit/verify", headers=AUD)).json()["ok"] is True
    for name in ("1-review-queue", "2-approved", "3-objection-filed", "4-objections", "5-dismissed",
                 "6-dismissed-list"):
        assert (ARTIFACTS / f"review-flow-{name}.png").stat().st_size > 0
