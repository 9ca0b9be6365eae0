"""`/v1/balances` and `/v1/awards` a page at a time: paging through either list yields every row
once, in the order of the whole list; the limit has a maximum; a cursor of another list, or none
this API handed out, is a 422 naming `cursor`."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt, scalar
from tests.support.paging import read_pages

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url, "ledger")
    maker = make_sessionmaker(engine)
    # Year pools and per-subject pools (no year) of several beneficiaries, over two years.
    hospital = "1231" + new_applicant()[4:]
    receipts = [receipt("GT-EQUITY", new_applicant(), "ROUND-A", "1000000.00") for _ in range(5)]
    receipts += [receipt("GT-EQUITY", new_applicant(), "ROUND-B", "2000000.00", year=2025) for _ in range(2)]
    receipts += [receipt("GT-CLIN", hospital, f"P-{i}", "300000.00") for i in range(4)]
    await process(ledger_loop(maker, settings), [assessed(r) for r in receipts])
    yield maker
    await engine.dispose()


@pytest.fixture
async def client(settings: Settings, maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as c:
        yield c


async def _pages(client: httpx.AsyncClient, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    return await read_pages(client, path, limit, AUD, **params)


async def test_paging_through_the_balances_yields_each_pool_once_in_order(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession]
) -> None:
    pools = await scalar(maker, "SELECT count(*) FROM pools")
    whole = await _pages(client, "/v1/balances", 200)
    assert len(whole) == 1 and len(whole[0]) == pools > 4
    for limit in (1, 2, 3, pools - 1, pools):
        pages = await _pages(client, "/v1/balances", limit)
        assert [item for page in pages for item in page] == whole[0]
        assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    # Per-subject pools (no year) are among them: the NULLs of the order survive the page boundaries.
    assert any("subject" in item and item["year"] is None for item in whole[0])


async def test_paging_through_filtered_balances(client: httpx.AsyncClient) -> None:
    whole = (await _pages(client, "/v1/balances", 200, program="GT-CLIN"))[0]
    assert {item["pool"].split("/")[0] for item in whole} == {"GT-CLIN"} and len(whole) == 5
    pages = await _pages(client, "/v1/balances", 2, program="GT-CLIN")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [item for page in pages for item in page] == whole


async def test_paging_through_the_awards_yields_each_award_once_in_decision_order(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession]
) -> None:
    awards = await scalar(maker, "SELECT count(*) FROM awards")
    whole = (await _pages(client, "/v1/awards", 200))[0]
    assert len(whole) == awards == 11
    seqs = [a["journal_seq"] for a in whole]
    assert seqs == sorted(seqs)
    for limit in (1, 4, 10, 11):
        pages = await _pages(client, "/v1/awards", limit)
        assert [item for page in pages for item in page] == whole
    pages = await _pages(client, "/v1/awards", 1, year=2025)
    assert [len(p) for p in pages] == [1, 1]


async def test_a_list_without_a_limit_answers_the_first_fifty(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/awards", headers=AUD)).json()
    assert len(body["items"]) == 11 and body["next_cursor"] is None


@pytest.mark.parametrize("path", ["/v1/balances", "/v1/awards"])
async def test_the_limit_has_a_maximum(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path, params={"limit": 200}, headers=AUD)).status_code == 200
    for limit in (201, 0, -1):
        resp = await client.get(path, params={"limit": limit}, headers=AUD)
        assert resp.status_code == 422, resp.text
        assert any(e["field"].endswith("limit") for e in resp.json()["errors"])


def _forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/v1/balances", "/v1/awards"])
async def test_a_cursor_this_list_did_not_hand_out_is_refused(client: httpx.AsyncClient, path: str) -> None:
    other = "/v1/awards" if path == "/v1/balances" else "/v1/balances"
    foreign = (await client.get(other, params={"limit": 1}, headers=AUD)).json()["next_cursor"]
    forged = [
        "!!!", "bm90IGEgY3Vyc29y", foreign,
        _forged("balances:pool:GT-EQUITY/beneficiary-year:x:99999999999"),  # a year no int column holds
        _forged("balances:award:app_1"), _forged("balances:pool:p:b:\x00"), _forged("awards:"),
        _forged("awards:99999999999999999999"), _forged("awards:-1"),
    ]
    for cursor in forged:
        resp = await client.get(path, params={"cursor": cursor}, headers=AUD)
        assert resp.status_code == 422, (cursor, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == ["cursor"]
