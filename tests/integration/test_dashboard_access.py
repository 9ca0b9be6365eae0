"""The operators' dashboard over HTTP, against real PostgreSQL: sign-in required (only the form before),
a wrong token refused, the session cookie's flags, CSRF on revoke, the revoke recorded with who and
why through the live revocation path, and every value escaped."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from services.ledger.dashboard.domain import COOKIE_NAME
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import OPERATOR_TOKEN
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt

pytestmark = pytest.mark.integration

HOSTILE = "<script>alert(1)</script>上海某某生物"


@pytest.fixture(scope="module")
async def ledger(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], list[str], str]]:
    schema = f"ledger_dash_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    ent = new_applicant()
    receipts = [receipt("GT-EQUITY", ent, f"R-{i}<b>", "4000000.00") for i in range(2)]
    for r in receipts:
        r["applicant"]["name"] = HOSTILE
    await process(ledger_loop(maker, settings), [assessed(r) for r in receipts])
    try:
        yield maker, [r["application_id"] for r in receipts], ent
    finally:
        await engine.dispose()


@pytest.fixture
async def client(settings: Settings, ledger: tuple) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=ledger[0])) as c:
        yield c


async def _sign_in(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/dashboard/login", data={"token": OPERATOR_TOKEN})


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "the page carries the session's CSRF token"
    return match.group(1)


async def test_without_a_session_only_the_sign_in_form_is_shown(client: httpx.AsyncClient, ledger: tuple) -> None:
    resp = await client.get("/dashboard")
    assert resp.status_code == 200 and 'action="/dashboard/login"' in resp.text
    assert ledger[2] not in resp.text and "GT-EQUITY" not in resp.text and "Revoke" not in resp.text
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert (await client.get("/dashboard/events")).status_code == 401


async def test_a_wrong_token_is_refused_with_the_form_again(client: httpx.AsyncClient) -> None:
    resp = await client.post("/dashboard/login", data={"token": "not-the-operator-token"})
    assert resp.status_code == 401 and "not accepted" in resp.text and 'action="/dashboard/login"' in resp.text
    assert COOKIE_NAME not in resp.headers.get("set-cookie", "")
    assert (await client.post("/dashboard/login", data={})).status_code == 401


async def test_sign_in_sets_a_signed_httponly_samesite_strict_cookie(client: httpx.AsyncClient) -> None:
    resp = await _sign_in(client)
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
    cookie = resp.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "max-age=" in cookie.lower()
    assert "secure" not in cookie.lower(), "plain http here; Secure only over https"
    assert OPERATOR_TOKEN not in cookie
    value = client.cookies[COOKIE_NAME]
    client.cookies.set(COOKIE_NAME, value[:-1] + ("0" if value[-1] != "0" else "1"), path="/dashboard")
    assert 'action="/dashboard/login"' in (await client.get("/dashboard")).text, "a forged signature is refused"


async def test_sign_in_over_https_sets_secure(client: httpx.AsyncClient) -> None:
    resp = await client.post("/dashboard/login", data={"token": OPERATOR_TOKEN},
                             headers={"x-forwarded-proto": "https"})
    assert "secure" in resp.headers["set-cookie"].lower()


async def test_the_dashboard_shows_pools_decisions_and_escapes_every_value(
    client: httpx.AsyncClient, ledger: tuple
) -> None:
    await _sign_in(client)
    resp = await client.get("/dashboard", params={"year": "2024", "beneficiary": ledger[2]})
    assert resp.status_code == 200
    html = resp.text
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;上海某某生物" in html
    assert "R-0&lt;b&gt;" in html and "<b>" not in html
    assert "GT-EQUITY/beneficiary-year" in html and 'title="8,000,000.00元"' in html and ">800万元<" in html
    assert "80.0%" in html and all(app in html for app in ledger[1])
    other = await client.get("/dashboard", params={"beneficiary": "nobody"})
    assert ledger[1][0] not in other.text, "the beneficiary filter applies"


async def test_revoke_without_csrf_is_refused_and_with_it_is_recorded(client: httpx.AsyncClient, ledger: tuple) -> None:
    maker, apps, _ = ledger
    await _sign_in(client)
    csrf = _csrf((await client.get("/dashboard")).text)
    url = f"/dashboard/awards/{apps[1]}/revoke"
    refused = await client.post(url, data={"reason": "no token"})
    assert refused.status_code == 403
    wrong = await client.post(url, data={"reason": "bad token", "csrf": "0" * 64})
    assert wrong.status_code == 403
    cross = await client.post(url, data={"reason": "cross", "csrf": csrf}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    fetched = await client.post(url, data={"reason": "cross", "csrf": csrf}, headers={"sec-fetch-site": "cross-site"})
    assert fetched.status_code == 403
    async with maker() as session:
        assert await session.scalar(text("SELECT count(*) FROM revocations")) == 0

    blank = await client.post(url, data={"reason": "  ", "csrf": csrf})
    assert blank.status_code == 303 and "reason-required" in blank.headers["location"]
    done = await client.post(url, data={"reason": "资料不实 <i>x</i>", "csrf": csrf})
    assert done.status_code == 303 and "notice=revoked" in done.headers["location"]
    again = await client.post(url, data={"reason": "twice", "csrf": csrf})
    assert "already-revoked" in again.headers["location"]
    async with maker() as session:
        row = (await session.execute(text("SELECT reason, revoked_by FROM revocations"))).one()
        committed = await session.scalar(text("SELECT committed_fen FROM pools WHERE pool = 'GT-EQUITY/beneficiary-year'"))
        event = await session.scalar(text("SELECT count(*) FROM outbox WHERE type = 'award.revoked'"))
    assert tuple(row) == ("资料不实 <i>x</i>", "operator:dashboard")
    assert committed == 4_000_000_00 and event == 1
    page = (await client.get("/dashboard")).text
    assert "资料不实 &lt;i&gt;x&lt;/i&gt;" in page and "operator:dashboard" in page


async def test_revoke_without_a_session_is_refused(settings: Settings, ledger: tuple) -> None:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=ledger[0])) as anon:
        resp = await anon.post(f"/dashboard/awards/{ledger[1][0]}/revoke", data={"reason": "x", "csrf": "0" * 64})
    assert resp.status_code == 401


async def test_sign_out_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await _sign_in(client)
    csrf = _csrf((await client.get("/dashboard")).text)
    resp = await client.post("/dashboard/logout", data={"csrf": csrf})
    assert resp.status_code == 303
    assert 'action="/dashboard/login"' in (await client.get("/dashboard")).text
