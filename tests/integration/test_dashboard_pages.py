"""The dashboard's charts and pages against real PostgreSQL: the three charts as inline SVG (no
script anywhere on the page), Beijing time, programs by Chinese name and 文号, 万元 with the exact
yuan on hover, the payment batches and orders for payment officers, pagination on the tables, the
applicant search, and the export links that download the same files as /v1/exports."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from shared.web.display import program_label
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import OP, OPERATOR_TOKEN
from tests.support.exports import Seeded, api_items, column, csv_rows, seed_ledger, xlsx_rows, yuan_sum
from tests.support.ledger import Staff, new_staff
from tests.support.staffpages import sign_in

pytestmark = pytest.mark.integration

HOSTILE = '"><script>alert(1)</script>上海恶意科技'


@dataclass
class World:
    maker: async_sessionmaker[AsyncSession]
    seeded: Seeded
    officer: Staff
    reviewer: Staff


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    schema = f"ledger_dash_pages_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    try:
        seeded = await seed_ledger(maker, settings, names=("上海甲生物科技有限公司", HOSTILE, "上海丙基因技术有限公司"))
        yield World(maker, seeded, await new_staff(maker, "赵六", "payment_officer"),
                    await new_staff(maker, "张三", "reviewer"))
    finally:
        await engine.dispose()


@pytest.fixture
async def client(settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=world.maker)) as c:
        yield c


async def _page(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN, **params: object) -> str:
    await sign_in(client, "/dashboard/login", "/dashboard", token)
    resp = await client.get("/dashboard", params=params)
    assert resp.status_code == 200, resp.text
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    return resp.text


def _svg(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg[^>]*id="{chart_id}"[^>]*>.*?</svg>', html, re.S)
    assert match, f"{chart_id} is drawn inline"
    return match.group(0)


async def test_three_charts_inline_svg_without_script(client: httpx.AsyncClient, world: World) -> None:
    html = await _page(client, year=2024)
    assert html.count("<script") == 1 and '<script src="/dashboard/app.js" defer></script>' in html
    pools = _svg(html, "chart-pools")
    assert 'role="img"' in pools and "GT-EQUITY/beneficiary-year" in pools and "call-budget" in pools
    assert "<title>" in pools and "上限 cap" in pools
    programs = _svg(html, "chart-programs")
    assert "基因治疗企业股权融资资助（沪科规〔2023〕10号）" in programs and "2024-06" in programs
    calls = _svg(html, "chart-calls")
    assert world.seeded.call_id in calls and "1500万元 / 2000万元 · 75.0%" in calls
    # The call's program, found by decisions.call_id (the ledger has no call titles: ids are shown).
    assert program_label("GT-PRODUCT") in calls
    assert "15,000,000.00元" in calls, "the exact yuan on hover"


async def test_beijing_time_chinese_names_and_wan_yuan(client: httpx.AsyncClient, world: World) -> None:
    html = await _page(client)
    decisions = html[html.index('id="decisions"'):html.index('id="revocations"')]
    assert re.search(r"2024-06-01 17:\d\d", decisions) and "T09:00" not in decisions and "+00:00" not in decisions
    assert "基因治疗企业股权融资资助（沪科规〔2023〕10号）" in decisions
    assert "待核定 pending_review" in decisions and "已核准 approved" in decisions
    assert 'title="1,000,000.00元"' in decisions and ">100万元<" in decisions
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;上海恶意科技" in html


async def test_payment_officers_see_batches_and_orders_not_the_queue(client: httpx.AsyncClient, world: World) -> None:
    resp = await client.post("/v1/payment-batches", json={}, headers=world.officer.headers)
    assert resp.status_code == 201, resp.text
    batch = resp.json()["id"]
    html = await _page(client, world.officer.key)
    assert 'id="reviews"' not in html and 'id="pools"' not in html, "the queue is not a payment officer's"
    batches = html[html.index('id="batches"'):html.index('id="orders"')]
    assert batch in batches and "已创建 created" in batches and ">100万元<" in batches and "赵六" in batches
    orders = html[html.index('id="orders"'):]
    assert "待补收款账户 awaiting_payee" in orders and "上海甲生物科技有限公司" in orders
    assert 'id="export-payments-xlsx"' in html and 'id="export-awards-xlsx"' not in html
    reviewer = await _page(client, world.reviewer.key)
    assert 'id="batches"' not in reviewer and 'id="export-payments-xlsx"' not in reviewer




async def test_pages_follow_their_next_links(client: httpx.AsyncClient, world: World) -> None:
    """Each table's next link leads to rows not on the first page, until none is left."""
    from services.ledger.dashboard.handlers import load_page
    from services.ledger.dashboard.repository import DashboardRepository
    from services.ledger.domain import ListFilter

    async with world.maker() as session:
        repo = DashboardRepository(session)
        first = await load_page(repo, ListFilter(), payments=True, limit=2)
        assert set(first.next) >= {"pools_after", "decisions_before", "reviews_after"}
    await _page(client)
    for table, key in (("pools", "data-account"), ("decisions", "data-app"), ("reviews", "data-app")):
        ids: list[str] = []
        params: dict[str, str] = {"rows": "2"}
        for _ in range(50):
            page_html = (await client.get("/dashboard", params=params)).text
            part = page_html[page_html.index(f'id="{table}"'):]
            part = part[:part.index("</table>")]
            ids += re.findall(rf'<tr {key}="([^"]+)"', part)
            pager = re.search(rf'<nav class="pager" data-for="{table}_(?:after|before)">(.*?)</nav>', page_html)
            nxt = pager and re.search(r'href="/dashboard\?([^"]+)" rel="next"', pager.group(1))
            if not nxt:
                break
            params = dict(httpx.QueryParams(nxt.group(1).replace("&amp;", "&")))
        assert len(ids) == len(set(ids)), f"{table}: no row twice"
        async with world.maker() as session:
            whole = await load_page(DashboardRepository(session), ListFilter(), limit=10_000)
        expected = {"pools": len(whole.pools), "decisions": len(whole.decisions), "reviews": len(whole.holds)}
        assert len(ids) == expected[table], table


async def test_search_by_name_or_code(client: httpx.AsyncClient, world: World) -> None:
    html = await _page(client, q="丙基因")
    found = html[html.index('id="applicants"'):]
    found = found[:found.index("</table>")]
    code = world.seeded.applicants[2]
    assert code in found and "上海丙基因技术有限公司" in found and world.seeded.applicants[0] not in found
    assert f'href="/dashboard?beneficiary={code}"' in found
    by_code = await _page(client, q=world.seeded.applicants[0][-8:])
    assert "上海甲生物科技有限公司" in by_code[by_code.index('id="applicants"'):]
    nothing = await _page(client, q="100%_无此单位")
    assert "No applicant found" in nothing


async def test_export_links_download_what_the_api_lists(client: httpx.AsyncClient, world: World) -> None:
    html = await _page(client, year=2024)
    link = re.search(r'href="(/dashboard/exports/awards\.xlsx[^"]*)"', html)
    assert link and "year=2024" in link.group(1)
    resp = await client.get(link.group(1).replace("&amp;", "&"))
    assert resp.status_code == 200, resp.text
    header, rows, _ = xlsx_rows(resp.content)
    api = await api_items(client, "/v1/awards", OP, {"year": 2024})
    amount = column(header, "Amount (CNY)")
    assert yuan_sum(r[amount] for r in rows) == sum((Decimal(a["amount"]) for a in api), Decimal(0))
    _, data = csv_rows((await client.get("/dashboard/exports/balances.csv")).content)
    assert len(data) == len(await api_items(client, "/v1/balances", OP))
    await sign_in(client, "/dashboard/login", "/dashboard", world.reviewer.key)
    assert (await client.get("/dashboard/exports/payments.xlsx")).status_code == 403
    assert (await client.get("/dashboard/exports/secrets.xlsx")).status_code == 404
    client.cookies.clear()
    assert (await client.get("/dashboard/exports/awards.csv")).status_code == 401
