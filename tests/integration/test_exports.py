"""The exports against real PostgreSQL: awards, payment orders and balances as XLSX (opened with
openpyxl) and CSV, with Chinese and English headers, amounts as numbers with two decimals whose
sums equal the API's lists, the lists' filters, account numbers masked but for payment officers,
the roles (403), and keyset pages that give the same rows as one page."""

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
from services.ledger.exports.domain import ExportQuery
from services.ledger.exports.handlers import pages_of
from services.ledger.exports.repository import ExportRepository
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.exports import Seeded, api_items, column, csv_rows, seed_ledger, xlsx_rows, yuan_sum
from tests.support.ledger import Staff, new_partner_key, new_staff

pytestmark = pytest.mark.integration


@dataclass
class World:
    maker: async_sessionmaker[AsyncSession]
    seeded: Seeded
    reviewer: Staff
    officer: Staff
    operator: Staff  # a staff operator (the bootstrap operator token holds every role but auditor's)
    partner_key: str


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    schema = f"ledger_exports_{secrets.token_hex(3)}"
    upgrade(settings.database_url, "ledger", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    try:
        seeded = await seed_ledger(maker, settings)
        yield World(maker, seeded, await new_staff(maker, "张三", "reviewer"),
                    await new_staff(maker, "赵六", "payment_officer"), await new_staff(maker, "孙八", "operator"),
                    await new_partner_key(maker))
    finally:
        await engine.dispose()


@pytest.fixture
async def client(settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=world.maker)) as c:
        yield c


async def _get(client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: object) -> httpx.Response:
    resp = await client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    return resp


async def test_awards_xlsx_has_both_headers_and_sums_equal_the_api(client: httpx.AsyncClient, world: World) -> None:
    resp = await _get(client, "/v1/exports/awards.xlsx", OP)
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert 'filename="grantline-awards.xlsx"' in resp.headers["content-disposition"]
    header, rows, sheet = xlsx_rows(resp.content)
    assert header[:3] == ["申请编号 Application ID", "申请单位 Applicant", "统一社会信用代码 USCC"]
    api = await api_items(client, "/v1/awards", OP)
    amount = column(header, "Amount (CNY)")
    assert len(rows) == len(api) == 6
    assert yuan_sum(r[amount] for r in rows) == sum((Decimal(a["amount"]) for a in api), Decimal(0))
    assert yuan_sum(r[amount] for r in rows) == Decimal("21000003.03")
    assert all(isinstance(r[amount], int | float) for r in rows)
    assert sheet.cell(row=2, column=amount + 1).number_format == "0.00"
    by_app = {r[0]: r for r in rows}
    first = by_app[world.seeded.awards[0]["application_id"]]
    assert first[1] == "上海甲生物科技有限公司"
    assert first[column(header, "Program")] == "基因治疗企业股权融资资助（沪科规〔2023〕10号）"
    assert first[column(header, "Program code")] == "GT-EQUITY"
    assert first[column(header, "Status")] == "有效 live"
    # Seeded at 09:00 UTC plus a second per assessment the worker made before (tests.support.ledger's
    # clock): Beijing time, to the minute, is 17:xx that day.
    assert re.fullmatch(r"2024-06-01 17:\d\d", first[column(header, "Decided (Beijing time)")]), "Beijing time"
    held = by_app[world.seeded.held[0]["application_id"]]
    assert held[column(header, "Status")] == "待核定 pending_review"


async def test_awards_csv_sums_equal_the_api_and_filters_apply(client: httpx.AsyncClient, world: World) -> None:
    header, rows = csv_rows((await _get(client, "/v1/exports/awards.csv", OP)).content)
    assert header[column(header, "Amount (CNY)")] == "金额（元） Amount (CNY)"
    amount = column(header, "Amount (CNY)")
    api = await api_items(client, "/v1/awards", OP)
    assert yuan_sum(r[amount] for r in rows) == sum((Decimal(a["amount"]) for a in api), Decimal(0))
    assert {r[amount] for r in rows} >= {"1000000.00", "2000001.01", "3000002.02", "5000000.00"}

    who = world.seeded.applicants[1]
    _, mine = csv_rows((await _get(client, "/v1/exports/awards.csv", OP, beneficiary=who,
                                   program="GT-EQUITY", year=2024)).content)
    api_mine = await api_items(client, "/v1/awards", OP, {"beneficiary": who, "program": "GT-EQUITY", "year": 2024})
    assert [r[0] for r in mine] == [a["application_id"] for a in api_mine] == [world.seeded.awards[1]["application_id"]]
    _, none = csv_rows((await _get(client, "/v1/exports/awards.csv", OP, year=2031)).content)
    assert none == []


async def test_payments_mask_accounts_but_for_payment_officers(client: httpx.AsyncClient, world: World) -> None:
    officer = world.officer.headers
    header, rows, _ = xlsx_rows((await _get(client, "/v1/exports/payments.xlsx", officer)).content)
    api = await api_items(client, "/v1/payment-orders", officer)
    amount, account = column(header, "Amount (CNY)"), column(header, "Payee account")
    assert len(rows) == len(api) == 2
    assert yuan_sum(r[amount] for r in rows) == sum((Decimal(o["amount"]) for o in api), Decimal(0))
    assert yuan_sum(r[amount] for r in rows) == Decimal("3000001.01")
    assert "6222020000001234" in {r[account] for r in rows}
    statuses = {r[column(header, "Status")] for r in rows}
    assert statuses == {"待支付 ready", "待补收款账户 awaiting_payee"}

    h, audited = csv_rows((await _get(client, "/v1/exports/payments.csv", AUD)).content)
    assert {r[column(h, "Payee account")] for r in audited} == {"****1234", ""}
    assert "6222020000001234" not in (await client.get("/v1/exports/payments.csv", headers=AUD)).text
    _, ready = csv_rows((await _get(client, "/v1/exports/payments.csv", AUD, status="ready")).content)
    assert [r[1] for r in ready] == [world.seeded.paid[0]["application_id"]]


async def test_balances_sum_every_money_column_as_the_api(client: httpx.AsyncClient, world: World) -> None:
    header, rows, _ = xlsx_rows((await _get(client, "/v1/exports/balances.xlsx", world.reviewer.headers)).content)
    api = await api_items(client, "/v1/balances", OP)
    assert len(rows) == len(api)
    for english, field in (("Cap", "cap"), ("Committed", "committed"), ("Held", "held"), ("Available", "available")):
        i = column(header, f"{english} (CNY)")
        assert yuan_sum(r[i] for r in rows) == sum((Decimal(b[field]) for b in api), Decimal(0)), english
    call = [r for r in rows if r[0] == "call-budget"]
    assert len(call) == 1 and call[0][column(header, "Subject")] == world.seeded.call_id
    assert Decimal(str(call[0][column(header, "Committed (CNY)")])) == Decimal("15000000.00")
    names = {r[column(header, "Beneficiary name")] for r in rows}
    assert "上海乙医药有限公司" in names and "every applicant 全部申报单位" in names
    _, csv_data = csv_rows((await _get(client, "/v1/exports/balances.csv", OP, program="GT-PRODUCT")).content)
    assert csv_data and all(r[0].startswith("GT-PRODUCT/") for r in csv_data)


@pytest.mark.parametrize("path", ["awards.xlsx", "awards.csv", "balances.csv", "payments.xlsx", "payments.csv"])
async def test_roles(client: httpx.AsyncClient, world: World, path: str) -> None:
    url = f"/v1/exports/{path}"
    assert (await client.get(url)).status_code == 401
    partner = {"Authorization": f"Bearer {world.partner_key}"}
    assert (await client.get(url, headers=partner)).status_code == 403
    if path.startswith("payments"):
        assert (await client.get(url, headers=world.operator.headers)).status_code == 403, "operators take none"
        assert (await client.get(url, headers=world.reviewer.headers)).status_code == 403
    else:
        assert (await client.get(url, headers=world.officer.headers)).status_code == 403
        assert (await client.get(url, headers=world.reviewer.headers)).status_code == 200
        assert (await client.get(url, headers=world.operator.headers)).status_code == 200


@pytest.mark.parametrize("export", ["awards", "payments", "balances"])
async def test_keyset_pages_give_the_rows_of_one_page(world: World, export: str) -> None:
    async with world.maker() as session:
        repo = ExportRepository(session)
        whole = [row async for page in pages_of(export, repo, ExportQuery(), page_rows=10_000) for row in page]
        small = [row async for page in pages_of(export, repo, ExportQuery(), page_rows=2) for row in page]
    assert whole and small == whole
