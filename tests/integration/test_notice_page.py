"""The 公示 page (`GET /announcements`) over a real notice in PostgreSQL: grouped by program and
call (申报批次) with the Chinese program name and 文号 first, then the call's title (the support
year for an announcement from before calls were passed on, and beside the call's id for a call
whose title notify does not know), times in Beijing time, amounts in 万元
with the exact yuan, final awards marked, the objection form only while a notice runs, each
award's transparency log index linking to its inclusion proof, filters by year, program and
status from a GET form, keyset pages that show every row once; valid HTML5, labelled, no script."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from lxml import html as lxml_html
from lxml.html import HtmlElement
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.app import create_app
from shared.config.settings import Settings
from shared.web.display import program_label
from shared.web.ratelimit import RateLimiter
from tests.support.apps import RoutesOnly, routes_only
from tests.support.notice import (
    EQUITY_CALL,
    EQUITY_TITLE,
    EQUITY_UNTITLED,
    PRODUCT_CALL,
    PRODUCT_TITLE,
    Seeded,
    accessibility_problems,
    html5_errors,
    seed,
)
from tests.support.notify import scratch_schema

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def notice(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Seeded]]:
    async with scratch_schema(settings, "notice_page_") as maker:
        yield maker, await seed(maker, NOW)


@pytest.fixture
async def client(settings: Settings, notice: tuple[async_sessionmaker[AsyncSession], Seeded]
                 ) -> AsyncIterator[httpx.AsyncClient]:
    ctx = RoutesOnly(settings=settings, maker=notice[0], objection_limiter=RateLimiter(100.0, 100))
    async with routes_only(create_app(settings), ctx) as c:
        yield c


@pytest.fixture
def seeded(notice: tuple[async_sessionmaker[AsyncSession], Seeded]) -> Seeded:
    return notice[1]


async def get_page(client: httpx.AsyncClient, **params: Any) -> tuple[str, HtmlElement]:
    resp = await client.get("/announcements", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    return resp.text, lxml_html.document_fromstring(resp.text)


def rows(doc: HtmlElement) -> dict[str, HtmlElement]:
    """The award rows of the page, by subject."""
    return {r.find_class("subject")[0].text_content(): r for r in doc.xpath("//tr[@data-announcement]")}


def text_of(el: HtmlElement) -> str:
    return " ".join(el.text_content().split())


async def api_items(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    items = (await client.get("/v1/announcements", params={"limit": 1000})).json()["items"]
    return {i["subject"]: i for i in items}


async def test_groups_are_by_program_and_call_chinese_name_and_document_then_the_calls_title(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    _, doc = await get_page(client)
    groups = doc.xpath("//table[@id='announcements']/tbody[@data-program]")
    order = [(g.get("data-program"), int(g.get("data-year")), g.get("data-call")) for g in groups]
    # Newest support year first; within a year by program, then by call, the announcements without
    # a call (from before calls were passed on) last; one group per call, never split on one page.
    assert order == [("GT-PRODUCT", 2025, PRODUCT_CALL), ("GT-EQUITY", 2024, EQUITY_CALL),
                     ("GT-EQUITY", 2024, EQUITY_UNTITLED), ("GT-EQUITY", 2024, None), ("GT-CLIN", 2024, None)]
    heads = [text_of(g.xpath("tr[@class='group']/th[@scope='rowgroup']")[0]) for g in groups]
    assert heads[0].startswith(program_label("GT-PRODUCT") + " · " + PRODUCT_TITLE), heads[0]
    assert heads[1].startswith("基因治疗企业股权融资资助（沪科规〔2023〕10号） · " + EQUITY_TITLE), heads[1]
    assert f"call {EQUITY_CALL} · support year 2024" in heads[1]
    # A call whose title notify has not (yet) seen: its support year and its id.
    assert heads[2].startswith(program_label("GT-EQUITY") + f" · 2024年度 申报批次 {EQUITY_UNTITLED}"), heads[2]
    # No call: the support year, as before.
    assert heads[3].startswith(program_label("GT-EQUITY") + " · 2024年度"), heads[3]
    assert heads[4].startswith(program_label("GT-CLIN") + " · 2024年度"), heads[4]
    assert "申报批次" not in heads[3] + heads[4] and EQUITY_TITLE not in heads[3]
    expected = [{"RUNNING-PRODUCT-2025"}, {"RUNNING-EQ-A", "RUNNING-EQ-B"}, {"ENDED-NOT-FINAL"},
                {"FINAL-EQ-3000W", "FINAL-EQ-ODD"}, {"FINAL-CLIN-50W", "FINAL-CLIN-1.5Y"}]
    assert [{text_of(s) for s in g.find_class("subject")} for g in groups] == expected


async def test_revoked_awards_are_not_on_the_page(client: httpx.AsyncClient, seeded: Seeded) -> None:
    text, doc = await get_page(client)
    assert not (Seeded.subjects(seeded.revoked_final + seeded.revoked_running) & set(rows(doc)))
    assert "REVOKED" not in text


async def test_times_are_beijing_time_to_the_minute(client: httpx.AsyncClient, seeded: Seeded) -> None:
    _, doc = await get_page(client)
    final = rows(doc)["FINAL-EQ-3000W"]
    # Published 2024-05-01T08:00Z, the notice ending an hour later: 16:00 and 17:00 in Beijing.
    published = final.find_class("published")[0].find("time")
    assert published.text == "2024-05-01 16:00" and published.get("datetime").startswith("2024-05-01T08:00:00")
    assert final.find_class("notice-ends")[0].find("time").text == "2024-05-01 17:00"
    api = await api_items(client)
    for subject, row in rows(doc).items():
        shown = row.find_class("published")[0].find("time").text
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", shown), shown
        at = datetime.fromisoformat(api[subject]["published_at"])
        assert shown == (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert "+00:00" not in text_of(doc.find("body"))


async def test_amounts_are_in_wan_yuan_with_the_exact_yuan(client: httpx.AsyncClient) -> None:
    _, doc = await get_page(client)
    expected = {
        "FINAL-EQ-3000W": ("3000万元", "30,000,000.00元"),
        "FINAL-EQ-ODD": ("123.456789万元", "1,234,567.89元"),
        "FINAL-CLIN-1.5Y": ("1.5亿元", "150,000,000.00元"),
        "FINAL-CLIN-50W": ("50万元", "500,000.00元"),
    }
    found = rows(doc)
    for subject, (wan, exact) in expected.items():
        cell = found[subject].find_class("amount")[0]
        figure = cell.xpath("span[@class='amount']")[0]
        assert figure.text == wan and figure.get("title") == exact  # exact on hover
        assert cell.find_class("exact")[0].text == exact  # and beside it


async def test_final_awards_are_marked_and_running_ones_take_objections(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    _, doc = await get_page(client)
    found = rows(doc)
    api = await api_items(client)
    for subject, row in found.items():
        status = text_of(row.find_class("status")[0])
        form = row.xpath(".//form[@class='objection']")
        if subject in Seeded.subjects(seeded.final):
            assert row.get("class") == "final" and "已确定 final" in status and "确定于" in status
            assert row.xpath(".//strong[contains(@class, 'badge') and contains(@class, 'final')]")
            assert not form, f"{subject}: final, no objection"
        elif subject in Seeded.subjects(seeded.running):
            assert row.get("class") == "under_notice" and status.startswith("公示中 under_notice")
            [f] = form
            assert f.get("action") == f"/announcements/{api[subject]['id']}/objections" and f.get("method") == "post"
            assert {c.get("name") for c in f.xpath(".//input|.//textarea")} == {
                "name", "organisation", "contact", "statement"}
        else:
            assert subject in Seeded.subjects(seeded.ended)
            assert "公示中 under_notice" in status and "公示期满" in status
            assert not form, "the notice has ended: objections are no longer accepted"
    assert len(found) == len(seeded.final) + len(seeded.running) + len(seeded.ended)


async def test_the_form_files_an_objection_and_the_count_shows(client: httpx.AsyncClient) -> None:
    api = await api_items(client)
    ann = api["RUNNING-EQ-B"]["id"]
    answer = await client.post(f"/announcements/{ann}/objections",
                               data={"name": "张三", "contact": "13800000000", "statement": "申报材料与事实不符"})
    assert answer.status_code == 202 and "异议已受理" in answer.text
    _, doc = await get_page(client)
    cell = rows(doc)["RUNNING-EQ-B"].find_class("objections")[0]
    assert "1 项待处理" in text_of(cell) and cell.xpath(".//form[@class='objection']")
    assert "张三" not in lxml_html.tostring(doc, encoding="unicode")


async def test_each_award_shows_its_log_index_linking_to_its_inclusion_proof(client: httpx.AsyncClient) -> None:
    _, doc = await get_page(client)
    api = await api_items(client)
    size = (await client.get("/v1/transparency/checkpoint")).text.splitlines()[1]
    for subject, row in rows(doc).items():
        index = api[subject]["log_index"]
        assert isinstance(index, int)
        [link] = row.find_class("log")[0].findall("a")
        assert link.text == f"#{index}"
        assert link.get("href") == f"/v1/transparency/proof/inclusion?index={index}&size={size}"
    proof = await client.get(unescape(link.get("href")))
    assert proof.status_code == 200 and proof.json()["index"] == index


@pytest.mark.parametrize(("params", "expected"), [
    ({"year": "2025"}, {"RUNNING-PRODUCT-2025"}),
    ({"program": "GT-CLIN"}, {"FINAL-CLIN-50W", "FINAL-CLIN-1.5Y"}),
    ({"year": "2024", "program": "GT-EQUITY", "status": "final"}, {"FINAL-EQ-3000W", "FINAL-EQ-ODD"}),
    ({"status": "under_notice", "year": "2024"}, {"ENDED-NOT-FINAL", "RUNNING-EQ-A", "RUNNING-EQ-B"}),
    ({"year": "2023"}, set()),
])
async def test_filters_by_year_program_and_status(
    client: httpx.AsyncClient, params: dict[str, str], expected: set[str]
) -> None:
    text, doc = await get_page(client, **params)
    assert set(rows(doc)) == expected
    form = doc.xpath("//form[@class='filters']")[0]
    assert form.get("method") == "get" and form.get("action") == "/announcements"
    for name, value in params.items():  # the form shows what is filtered
        [chosen] = form.xpath(f".//select[@name='{name}']/option[@selected]")
        assert chosen.get("value") == value
    if not expected:
        assert "暂无公示" in text
    assert html5_errors(text) == [] and accessibility_problems(text) == []


async def test_the_forms_all_options_send_empty_values_which_filter_nothing(client: httpx.AsyncClient) -> None:
    _, everything = await get_page(client)
    _, all_options = await get_page(client, year="", program="", status="", limit="50")
    assert set(rows(all_options)) == set(rows(everything)) and len(rows(everything)) == 8
    options = everything.xpath("//select[@name='program']/option")
    assert options[0].get("value") == "" and any(
        o.get("value") == "GT-EQUITY" and o.text == program_label("GT-EQUITY") for o in options)
    assert [o.get("value") for o in everything.xpath("//select[@name='year']/option")] == ["", "2025", "2024"]


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_pages_show_every_row_once_in_order_and_keep_the_filters(client: httpx.AsyncClient, limit: int) -> None:
    _, whole = await get_page(client)
    everything = [text_of(s) for s in whole.xpath("//tr[@data-announcement]/td[@class='subject']")]
    seen: list[str] = []
    text, doc = await get_page(client, limit=str(limit))
    assert "第一页" not in text
    pages = 1
    while True:
        shown = [text_of(s) for s in doc.xpath("//tr[@data-announcement]/td[@class='subject']")]
        assert 0 < len(shown) <= limit
        seen += shown
        nxt = doc.xpath("//nav[@class='pages']//a[normalize-space()='下一页 Next page']")
        if not nxt:
            break
        assert f"limit={limit}" in nxt[0].get("href")
        text, doc = await get_page(client, **dict(httpx.URL(nxt[0].get("href")).params))
        pages += 1
        assert doc.xpath("//nav[@class='pages']//a[contains(., '第一页')]/@href") == [f"?limit={limit}"]
        assert html5_errors(text) == []
    # Page boundaries inside a call, between calls, and between a call and the rows without one.
    assert seen == everything and pages == -(-8 // limit)
    filtered = [text_of(s) for s in (await get_page(client, program="GT-EQUITY", limit="2"))[1].xpath(
        "//td[@class='subject']")]
    assert len(filtered) == 2 and set(filtered) <= {s for s in everything if "EQ" in s or s == "ENDED-NOT-FINAL"}


async def test_a_call_split_over_two_pages_says_it_continues(client: httpx.AsyncClient) -> None:
    # limit 2: the PRODUCT call and RUNNING-EQ-A on page 1, RUNNING-EQ-B (the same call) on page 2.
    _, first = await get_page(client, limit="2")
    _, second = await get_page(client, **dict(httpx.URL(
        first.xpath("//a[normalize-space()='下一页 Next page']/@href")[0]).params))
    continued, after = second.xpath("//tbody[@data-program]")
    assert continued.get("data-call") == EQUITY_CALL and "续上页" in text_of(continued)
    assert after.get("data-call") == EQUITY_UNTITLED and "续上页" not in text_of(after)


async def test_a_page_size_is_bounded_and_a_foreign_cursor_answers_a_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/announcements", params={"limit": 1001})).status_code == 422
    foreign = (await client.get("/v1/announcements", params={"limit": 1})).json()["next_cursor"]
    refused = await client.get("/announcements", params={"cursor": foreign})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert "链接无效" in refused.text and html5_errors(refused.text) == []


async def test_the_page_is_valid_html5_accessible_and_runs_no_script(client: httpx.AsyncClient) -> None:
    resp = await client.get("/announcements")
    text = resp.text
    assert html5_errors(text) == []
    assert accessibility_problems(text) == []
    doc = lxml_html.document_fromstring(text)
    assert doc.get("lang") == "zh-CN" and not doc.xpath("//script") and "onerror" not in text
    assert doc.xpath("//table[@id='announcements']/caption")
    assert [th.get("scope") for th in doc.xpath("//thead//th")] == ["col"] * 8
    assert all(th.get("scope") == "row" for th in doc.xpath("//tbody//th[@class='applicant']"))
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    # The open data and the log are a link away.
    assert doc.xpath("//a[@href='/v1/open-data/awards.csv']") and doc.xpath("//a[@href='/v1/transparency/checkpoint']")


async def test_hostile_values_stay_text(client: httpx.AsyncClient) -> None:
    _, doc = await get_page(client, program="GT-EQUITY")
    name = text_of(rows(doc)["FINAL-EQ-ODD"].find_class("applicant")[0])
    assert name == '=HYPERLINK("x"), "乙" 公司'
    odd, _ = await get_page(client, program='"><script>alert(1)</script>', year="<b>")
    assert "<script>alert" not in odd and "&lt;script&gt;" in odd and html5_errors(odd) == []
