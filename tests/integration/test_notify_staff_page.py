"""Notify's staff page (GET /staff/objections) over HTTP, against real PostgreSQL: sign-in by staff
key or bootstrap token (only the form before; keys without a reviewer's, operator's or auditor's
role refused), the open objections with their statements, the objector shown to reviewers only,
resolving through the API's handler (CSRF-checked, recorded with who and why), an auditor who sees
all and changes nothing, a deactivated member's session ended, sign-out, the link to the ledger's
dashboard, and every value escaped."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.app import create_app
from services.notify.dashboard.domain import COOKIE_NAME
from services.notify.handlers import record_award_events
from services.notify.repository import SqlNotifyRepository
from shared.config.settings import Settings
from shared.web.ratelimit import RateLimiter
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, AUDITOR_TOKEN, OP, OPERATOR_TOKEN
from tests.support.ledger import Staff, deactivate_staff, new_partner_key, new_staff
from tests.support.notify import decided, scratch_schema
from tests.support.staffpages import sign_in as staff_sign_in

pytestmark = pytest.mark.integration

NAME = "<b>异议人</b>" + secrets.token_hex(3)
CONTACT = f"objector-{secrets.token_hex(3)}@example.cn"
ORGANISATION = "某某大学 & <i>学院</i>"
STATEMENT = "<script>alert('x')</script>申报材料与事实不符\n第二行 & <img src=x onerror=alert(1)>"
APPLICANT = "<img src=x onerror=alert(2)>上海某某生物"


@dataclass
class Page:
    maker: async_sessionmaker[AsyncSession]
    settings: Settings
    reviewer: Staff
    auditor: Staff
    payment_officer: Staff
    partner_key: str

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.maker() as session:
            return await session.scalar(text(sql), params)


@pytest.fixture(scope="module")
def page_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ledger_public_url": "http://ledger.test:8003"})


@pytest.fixture(scope="module")
async def page(page_settings: Settings) -> AsyncIterator[Page]:
    async with scratch_schema(page_settings, prefix="notify_staff_page_") as maker:
        yield Page(maker, page_settings, await new_staff(maker, "张审核", "reviewer"),
                   await new_staff(maker, "王审计", "auditor"), await new_staff(maker, "赵出纳", "payment_officer"),
                   await new_partner_key(maker))


@pytest.fixture
async def client(page: Page) -> AsyncIterator[httpx.AsyncClient]:
    ctx = RoutesOnly(settings=page.settings, maker=page.maker, objection_limiter=RateLimiter(1000.0, 1000))
    async with routes_only(create_app(page.settings), ctx) as c:
        yield c


async def objection(client: httpx.AsyncClient, page: Page) -> str:
    """An award announced (its notice running) and an objection to it: the objection's id."""
    event, _ = decided("ptn_" + secrets.token_hex(6), status="approved", awarded="1600000.00", name=APPLICANT)

    def dead_letter(_event: Any, exc: Exception) -> None:
        raise AssertionError(exc)

    async with page.maker() as session, session.begin():
        await record_award_events(SqlNotifyRepository(session), [event], dead_letter, notice_period_seconds=3600,
                                  now=datetime.now(UTC))
    announcement = await page.scalar("SELECT id FROM announcements WHERE application_id = :a",
                                     a=event.data["application_id"])
    filed = await client.post(f"/v1/announcements/{announcement}/objections",
                              json={"name": NAME, "organisation": ORGANISATION, "contact": CONTACT,
                                    "statement": STATEMENT})
    assert filed.status_code == 202, filed.text
    return str(filed.json()["id"])


async def sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Signed in with `token`: the page's CSRF token."""
    return await staff_sign_in(client, "/staff/login", "/staff/objections", token)


def row_of(html: str, objection_id: str) -> str:
    found = re.search(rf'<tr data-objection="{objection_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"{objection_id} is on the page"
    return found.group(1)


async def resolution(client: httpx.AsyncClient, objection_id: str) -> dict[str, Any] | None:
    items = (await client.get("/v1/objections", params={"limit": 200}, headers=OP)).json()["items"]
    return next(o for o in items if o["id"] == objection_id)["resolution"]  # type: ignore[no-any-return]


async def test_without_a_session_only_the_sign_in_form_is_shown(client: httpx.AsyncClient, page: Page) -> None:
    obj = await objection(client, page)
    resp = await client.get("/staff/objections")
    assert resp.status_code == 200 and 'action="/staff/login"' in resp.text
    assert obj not in resp.text and "申报材料" not in resp.text
    csp = resp.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "form-action 'self'" in csp
    assert resp.headers["x-frame-options"] == "DENY" and resp.headers["cache-control"] == "no-store"
    refused = await client.post(f"/staff/objections/{obj}/resolve", data={"outcome": "dismissed", "reason": "r"})
    assert refused.status_code == 401 and 'action="/staff/login"' in refused.text
    assert await resolution(client, obj) is None


async def test_wrong_tokens_and_keys_without_the_role_are_refused(client: httpx.AsyncClient, page: Page) -> None:
    for token, status, says in (("not-a-token", 401, "not accepted"), ("", 401, "not accepted"),
                                (page.payment_officer.key, 403, "no role"), (page.partner_key, 403, "no role")):
        resp = await client.post("/staff/login", data={"token": token})
        assert resp.status_code == status and says in resp.text, token
        assert COOKIE_NAME not in resp.headers.get("set-cookie", "")


async def test_sign_in_sets_a_signed_httponly_samesite_strict_cookie_under_staff(client: httpx.AsyncClient) -> None:
    resp = await client.post("/staff/login", data={"token": OPERATOR_TOKEN})
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/staff" in cookie and "Secure" not in cookie and OPERATOR_TOKEN not in cookie
    over_https = await client.post("/staff/login", data={"token": OPERATOR_TOKEN},
                                   headers={"x-forwarded-proto": "https"})
    assert "Secure" in over_https.headers["set-cookie"]


async def test_a_reviewer_sees_the_objector_and_dismisses_with_a_reason(client: httpx.AsyncClient, page: Page) -> None:
    obj = await objection(client, page)
    csrf = await sign_in(client, page.reviewer.key)
    html = (await client.get("/staff/objections")).text
    assert "张审核" in html and "reviewer" in html
    assert 'href="http://ledger.test:8003/dashboard"' in html, "the way to the ledger's dashboard"
    row = row_of(html, obj)
    for value in (STATEMENT, NAME, CONTACT, ORGANISATION, APPLICANT):
        assert escape(value) in row  # shown, as text
    assert STATEMENT not in row and NAME not in row and APPLICANT not in row
    assert "<script" not in html and "<img" not in html
    assert 'name="outcome"' in row and f'action="/staff/objections/{obj}/resolve"' in row

    without = await client.post(f"/staff/objections/{obj}/resolve", data={"outcome": "dismissed", "reason": "r"})
    assert without.status_code == 403 and "CSRF" in without.text
    foreign = await client.post(f"/staff/objections/{obj}/resolve",
                                data={"outcome": "dismissed", "reason": "r", "csrf": csrf},
                                headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    no_reason = await client.post(f"/staff/objections/{obj}/resolve",
                                  data={"outcome": "dismissed", "reason": "  ", "csrf": csrf})
    assert no_reason.status_code == 303 and "notice=reason-required" in no_reason.headers["location"]
    no_outcome = await client.post(f"/staff/objections/{obj}/resolve", data={"reason": "r", "csrf": csrf})
    assert "notice=outcome-required" in no_outcome.headers["location"]
    assert await resolution(client, obj) is None

    done = await client.post(f"/staff/objections/{obj}/resolve",
                             data={"outcome": "dismissed", "reason": "查无实据 <b>x</b>", "csrf": csrf})
    assert done.status_code == 303 and "notice=dismissed" in done.headers["location"]
    assert "Objection dismissed" in (await client.get(done.headers["location"])).text
    got = await resolution(client, obj)
    assert got is not None and (got["outcome"], got["reason"]) == ("dismissed", "查无实据 <b>x</b>")
    assert got["by"] == {"id": page.reviewer.id, "name": "张审核"}
    assert await page.scalar("SELECT count(*) FROM outbox WHERE type = 'objection.resolved' "
                             "AND envelope->'data'->>'objection_id' = :o", o=obj) == 1
    dismissed = row_of((await client.get("/staff/objections?status=dismissed")).text, obj)
    assert "查无实据 &lt;b&gt;x&lt;/b&gt;" in dismissed and page.reviewer.id in dismissed and "<form" not in dismissed

    again = await client.post(f"/staff/objections/{obj}/resolve",
                              data={"outcome": "upheld", "reason": "再议", "csrf": csrf})
    assert "notice=resolved-already" in again.headers["location"]
    unknown = await client.post("/staff/objections/obj_unknown/resolve",
                                data={"outcome": "upheld", "reason": "x", "csrf": csrf})
    assert "notice=not-found" in unknown.headers["location"]
    assert (await client.post("/staff/objections/a%00b/resolve", data={"csrf": csrf})).status_code == 422


async def test_the_operator_token_upholds(client: httpx.AsyncClient, page: Page) -> None:
    obj = await objection(client, page)
    csrf = await sign_in(client, OPERATOR_TOKEN)
    assert escape(NAME) in row_of((await client.get("/staff/objections")).text, obj)
    done = await client.post(f"/staff/objections/{obj}/resolve",
                             data={"outcome": "upheld", "reason": "材料不实", "csrf": csrf})
    assert "notice=upheld" in done.headers["location"]
    got = await resolution(client, obj)
    assert got is not None and (got["outcome"], got["by"]) == ("upheld", {"id": "operator"})


@pytest.mark.parametrize("who", ["token", "staff"])
async def test_an_auditor_sees_all_and_changes_nothing(client: httpx.AsyncClient, page: Page, who: str) -> None:
    obj = await objection(client, page)
    csrf = await sign_in(client, AUDITOR_TOKEN if who == "token" else page.auditor.key)
    html = (await client.get("/staff/objections?status=all")).text
    row = row_of(html, obj)
    assert "申报材料与事实不符" in row and "reviewers only" in row
    assert CONTACT not in html and escape(NAME) not in html and "某某大学" not in html
    assert "<form" not in row and 'action="/staff/objections/' not in html
    refused = await client.post(f"/staff/objections/{obj}/resolve",
                                data={"outcome": "dismissed", "reason": "r", "csrf": csrf})
    assert refused.status_code == 403 and "reviewer" in refused.text
    assert await resolution(client, obj) is None
    api = (await client.get("/v1/objections", params={"limit": 200}, headers=AUD)).json()["items"]
    assert next(o for o in api if o["id"] == obj)["contact"] is None


async def test_a_deactivated_members_session_ends(client: httpx.AsyncClient, page: Page) -> None:
    member = await new_staff(page.maker, "周九", "reviewer")
    obj = await objection(client, page)
    csrf = await sign_in(client, member.key)
    await deactivate_staff(page.maker, member.id)
    assert 'action="/staff/login"' in (await client.get("/staff/objections")).text
    resp = await client.post(f"/staff/objections/{obj}/resolve",
                             data={"outcome": "dismissed", "reason": "r", "csrf": csrf})
    assert resp.status_code == 401
    assert await resolution(client, obj) is None


async def test_sign_out_needs_the_form_and_clears_the_cookie(client: httpx.AsyncClient) -> None:
    csrf = await sign_in(client, OPERATOR_TOKEN)
    assert (await client.post("/staff/logout", data={})).status_code == 403
    out = await client.post("/staff/logout", data={"csrf": csrf})
    assert out.status_code == 303 and f'{COOKIE_NAME}=""' in out.headers["set-cookie"]
    assert 'action="/staff/login"' in (await client.get("/staff/objections")).text


async def test_a_bad_cursor_or_status_shows_the_first_page(client: httpx.AsyncClient, page: Page) -> None:
    await sign_in(client, OPERATOR_TOKEN)
    for query in ("?cursor=nonsense", "?status=<b>", "?cursor=" + "x" * 3000, "?notice=<b>&objection=<i>"):
        resp = await client.get("/staff/objections" + query)
        assert resp.status_code == 200 and 'id="objections"' in resp.text and "<b>" not in resp.text, query
