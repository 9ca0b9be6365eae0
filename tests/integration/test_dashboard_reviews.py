"""The dashboard's staff sign-in and review queue over HTTP, against real PostgreSQL: a reviewer signs
in with a staff key, sees each hold with entitlement, requested amount, held amount, pools and the
rules with citations, approves a reduced amount or rejects with a reason (CSRF-checked, recorded
with who and why); an auditor sees all and changes nothing; keys without a dashboard role are
refused; a deactivated member's session ends; every value is escaped."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from services.ledger.dashboard.domain import COOKIE_NAME
from services.ledger.dashboard.handlers import load_changes
from services.ledger.dashboard.repository import DashboardRepository
from services.ledger.domain import ListFilter
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUDITOR_TOKEN, OPERATOR_TOKEN
from tests.support.ledger import (
    Staff,
    assessed,
    deactivate_staff,
    ledger_loop,
    new_applicant,
    new_partner_key,
    new_staff,
    process,
    receipt,
)
from tests.support.staffpages import sign_in as staff_sign_in
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

HOSTILE = "<script>alert(1)</script>上海某某生物"


@dataclass
class Dash:
    maker: async_sessionmaker[AsyncSession]
    settings: Settings
    reviewer: Staff
    auditor: Staff
    operator: Staff
    payment_officer: Staff
    partner_key: str

    async def hold(self, amount: str = "30000000.00", name: str = "上海某某生物科技有限公司") -> dict[str, Any]:
        r = receipt("GT-PRODUCT", new_applicant(), f"PRODUCT-{secrets.token_hex(3)}", amount, review="required",
                    requested=amount)
        r["applicant"]["name"] = name
        await process(ledger_loop(self.maker, self.settings), [assessed(r)])
        return r

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.maker() as session:
            return await session.scalar(text(sql), params)


@pytest.fixture(scope="module")
async def dash(settings: Settings) -> AsyncIterator[Dash]:
    schema = f"ledger_dash_rev_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    try:
        yield Dash(maker, settings, await new_staff(maker, "张三", "reviewer"), await new_staff(maker, "王五", "auditor"),
                   await new_staff(maker, "孙八", "operator"), await new_staff(maker, "赵六", "payment_officer"),
                   await new_partner_key(maker))
    finally:
        await engine.dispose()


@pytest.fixture
async def client(settings: Settings, dash: Dash) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=dash.maker)) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Signed in with `token`: the page's CSRF token."""
    return await staff_sign_in(client, "/dashboard/login", "/dashboard", token)


def row_of(html: str, application_id: str) -> str:
    match = re.search(rf'<tr data-app="{application_id}">(.*?)</tr>', html, re.S)
    assert match, f"{application_id} is on the page"
    return match.group(1)


async def test_a_reviewer_sees_the_queue_and_approves_a_reduced_amount(client: httpx.AsyncClient, dash: Dash) -> None:
    r = await dash.hold(name=HOSTILE)
    csrf = await sign_in(client, dash.reviewer.key)
    html = (await client.get("/dashboard")).text
    assert "张三" in html and dash.reviewer.id in html
    queue = html[html.index('id="reviews"'):html.index('id="pools"')]
    row = row_of(queue, r["application_id"])
    assert "3000万" in row and 'value="30000000.00"' in row, "entitlement, requested and held; the hold to approve"
    assert "002 §一(三)" in row and "000 §六" in row, "the rules with their citations"
    assert "GT-PRODUCT/subject" in row and "GT-PRODUCT/beneficiary-year" in row
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;上海某某生物" in html
    assert 'id="decisions"' not in html and "Revoke" not in html, "a reviewer neither lists decisions nor revokes"

    url = f"/dashboard/awards/{r['application_id']}/review"
    assert (await client.post(url, data={"decision": "approve", "amount": "20000000.00", "reason": "x"})).status_code == 403
    cross = await client.post(url, data={"decision": "approve", "reason": "x", "csrf": csrf},
                              headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    blank = await client.post(url, data={"decision": "approve", "reason": " ", "csrf": csrf})
    assert "reason-required" in blank.headers["location"]
    for amount in ("20000000.001", "30000000.01", "0.00", "二千万"):
        bad = await client.post(url, data={"decision": "approve", "amount": amount, "reason": "r", "csrf": csrf})
        assert "amount-invalid" in bad.headers["location"], amount
    assert await dash.scalar("SELECT count(*) FROM reviews") == 0

    done = await client.post(url, data={"decision": "approve", "amount": "20000000.00",
                                        "reason": "专家评审 <b>核定</b>", "csrf": csrf})
    assert done.status_code == 303 and "notice=partially-approved" in done.headers["location"]
    async with dash.maker() as session:
        review = (await session.execute(text(
            "SELECT decision, awarded_fen, reason, reviewed_by, reviewed_by_name FROM reviews "
            "WHERE application_id = :a"), {"a": r["application_id"]})).one()
        committed = await session.scalar(text(
            "SELECT committed_fen FROM pools WHERE pool = 'GT-PRODUCT/subject' AND beneficiary = :b"),
            {"b": r["applicant"]["id"]})
    assert tuple(review) == ("approve", 20_000_000_00, "专家评审 <b>核定</b>", dash.reviewer.id, "张三")
    assert committed == 20_000_000_00
    page = (await client.get(done.headers["location"])).text
    assert 'id="notice"' in page and r["application_id"] not in page[page.index('id="reviews"'):page.index('id="pools"')]
    again = await client.post(url, data={"decision": "reject", "reason": "twice", "csrf": csrf})
    assert "review-conflict" in again.headers["location"]


async def test_a_reviewer_rejects_and_the_pools_get_the_hold_back(client: httpx.AsyncClient, dash: Dash) -> None:
    r = await dash.hold("5000000.00")
    csrf = await sign_in(client, dash.reviewer.key)
    resp = await client.post(f"/dashboard/awards/{r['application_id']}/review",
                             data={"decision": "reject", "amount": "ignored", "reason": "材料不实", "csrf": csrf})
    assert "notice=rejected" in resp.headers["location"]
    committed = await dash.scalar("SELECT sum(committed_fen) FROM pools WHERE beneficiary = :b",
                                  b=r["applicant"]["id"])
    assert committed == 0


@pytest.mark.parametrize("who", ["staff", "token"])
async def test_an_auditor_sees_everything_and_changes_nothing(client: httpx.AsyncClient, dash: Dash, who: str) -> None:
    r = await dash.hold("1000000.00")
    csrf = await sign_in(client, dash.auditor.key if who == "staff" else AUDITOR_TOKEN)
    html = (await client.get("/dashboard")).text
    assert r["application_id"] in html
    assert 'id="reviews"' in html and 'id="decisions"' in html and 'id="revocations"' in html
    assert "Approve" not in html and "Reject" not in html and "Revoke" not in html
    url = f"/dashboard/awards/{r['application_id']}"
    review = await client.post(f"{url}/review", data={"decision": "approve", "reason": "r", "csrf": csrf})
    revoke = await client.post(f"{url}/revoke", data={"reason": "r", "csrf": csrf})
    assert (review.status_code, revoke.status_code) == (403, 403)
    assert await dash.scalar("SELECT count(*) FROM reviews WHERE application_id = :a", a=r["application_id"]) == 0
    assert await dash.scalar("SELECT count(*) FROM revocations WHERE application_id = :a",
                             a=r["application_id"]) == 0


async def test_a_staff_operator_revokes_recorded_as_themselves(client: httpx.AsyncClient, dash: Dash) -> None:
    r = await dash.hold("1000000.00")
    csrf = await sign_in(client, dash.operator.key)
    html = (await client.get("/dashboard")).text
    assert "Approve" not in html, "an operator without the reviewer's role does not review"
    resp = await client.post(f"/dashboard/awards/{r['application_id']}/revoke", data={"reason": "撤销", "csrf": csrf})
    assert "notice=revoked" in resp.headers["location"]
    by = await dash.scalar("SELECT revoked_by FROM revocations WHERE application_id = :a", a=r["application_id"])
    assert by == f"{dash.operator.id}:dashboard"
    review = await client.post(f"/dashboard/awards/{r['application_id']}/review",
                               data={"decision": "approve", "reason": "r", "csrf": csrf})
    assert review.status_code == 403


async def test_the_operator_token_still_signs_in_and_reviews(client: httpx.AsyncClient, dash: Dash) -> None:
    r = await dash.hold("1000000.00")
    csrf = await sign_in(client, OPERATOR_TOKEN)
    assert "Approve" in (await client.get("/dashboard")).text
    resp = await client.post(f"/dashboard/awards/{r['application_id']}/review",
                             data={"decision": "approve", "amount": "", "reason": "全额", "csrf": csrf})
    assert "notice=approved" in resp.headers["location"]
    assert await dash.scalar("SELECT reviewed_by FROM reviews WHERE application_id = :a",
                             a=r["application_id"]) == "operator"


async def test_keys_without_a_dashboard_role_are_refused(client: httpx.AsyncClient, dash: Dash) -> None:
    for key in (dash.partner_key,):  # payment officers sign in for the payments (test_dashboard_pages.py)
        resp = await client.post("/dashboard/login", data={"token": key})
        assert resp.status_code == 403 and "no role" in resp.text
        assert COOKIE_NAME not in resp.headers.get("set-cookie", "")
    assert (await client.post("/dashboard/login", data={"token": "gls_unknown"})).status_code == 401


async def test_a_deactivated_members_session_ends(client: httpx.AsyncClient, dash: Dash) -> None:
    member = await new_staff(dash.maker, "周九", "reviewer")
    r = await dash.hold("1000000.00")
    csrf = await sign_in(client, member.key)
    assert r["application_id"] in (await client.get("/dashboard")).text
    await deactivate_staff(dash.maker, member.id)
    assert 'action="/dashboard/login"' in (await client.get("/dashboard")).text
    resp = await client.post(f"/dashboard/awards/{r['application_id']}/review",
                             data={"decision": "approve", "reason": "r", "csrf": csrf})
    assert resp.status_code == 401
    assert (await client.get("/dashboard/events")).status_code == 401


    async def sign_in_again() -> int:
        return (await client.post("/dashboard/login", data={"token": member.key})).status_code

    # The key itself is refused within seconds (a staff key is known for at most a second).
    await eventually(sign_in_again, "the deactivated key refused", timeout_s=5, until=lambda code: code == 401)


async def test_the_live_stream_carries_a_review_and_the_pools_it_gave_back(client: httpx.AsyncClient,
                                                                           dash: Dash) -> None:
    r = await dash.hold("9000000.00")
    async with dash.maker() as session, session.begin():
        cursor = await DashboardRepository(session).newest()
    csrf = await sign_in(client, dash.reviewer.key)
    resp = await client.post(f"/dashboard/awards/{r['application_id']}/review",
                             data={"decision": "approve", "amount": "3000000.00", "reason": "核减", "csrf": csrf})
    assert "notice=partially-approved" in resp.headers["location"]
    async with dash.maker() as session, session.begin():
        changes = await load_changes(DashboardRepository(session), ListFilter(beneficiary=r["applicant"]["id"]),
                                     cursor)
        quiet = await load_changes(DashboardRepository(session), ListFilter(), changes.cursor) if changes else None
    assert changes is not None and changes.cursor.journal_seq > cursor.journal_seq
    (line,) = [d for d in changes.decisions if d.application_id == r["application_id"] and d.status != "pending_review"]
    assert (line.status, line.awarded_fen) == ("partially_approved", 3_000_000_00)
    assert {p.balance.key.pool: p.balance.committed_fen for p in changes.pools} == {
        "GT-PRODUCT/subject": 3_000_000_00, "GT-PRODUCT/beneficiary-year": 3_000_000_00}
    assert quiet is None, "nothing new after the stream's cursor"
