"""Open data (`GET /v1/open-data/awards.csv`, public) over a real notice in PostgreSQL: every
finalized award and nothing else (not one still under notice, not a revoked one), the columns in
their stable order, amounts in yuan with two decimals summing to the API's, the finalized date
in Beijing time, the log indices the transparency log holds; UTF-8 with a BOM, an attachment,
text kept as text in a spreadsheet; the stream pages through the snapshot a page at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.app import create_app
from services.notify.opendata.domain import COLUMNS
from services.notify.opendata.handlers import final_awards_csv
from shared.config.settings import Settings
from tests.support.apps import RoutesOnly, routes_only
from tests.support.notice import Seeded, award, finalize, record, seed
from tests.support.notify import scratch_schema

pytestmark = pytest.mark.integration

EXPECTED_COLUMNS = [
    "announcement_id", "applicant_name", "applicant_code", "program_code", "program_name", "policy_document",
    "subject", "amount_yuan", "year", "finalized_date", "log_index", "finalized_log_index",
]


@pytest.fixture(scope="module")
async def notice(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Seeded]]:
    async with scratch_schema(settings, "open_data_") as maker:
        yield maker, await seed(maker, datetime.now(UTC))


@pytest.fixture
async def client(settings: Settings, notice: tuple[async_sessionmaker[AsyncSession], Seeded]
                 ) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=notice[0])) as c:
        yield c


async def download(client: httpx.AsyncClient) -> tuple[httpx.Response, list[dict[str, str]]]:
    resp = await client.get("/v1/open-data/awards.csv")
    assert resp.status_code == 200, resp.text
    return resp, list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"), newline="")))


async def final_items(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    items = (await client.get("/v1/announcements", params={"status": "final", "limit": 1000})).json()["items"]
    return {i["id"]: i for i in items}


async def test_the_file_is_a_utf8_csv_attachment_with_a_bom_and_the_columns_in_order(client: httpx.AsyncClient) -> None:
    resp, _ = await download(client)
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"] == 'attachment; filename="grantline-awards-final.csv"'
    assert resp.content.startswith(b"\xef\xbb\xbf")  # Excel reads Chinese as UTF-8
    header = next(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert header == EXPECTED_COLUMNS == list(COLUMNS)
    assert resp.content.count(b"\r\n") == resp.content.decode("utf-8").count("\n")  # RFC 4180 line ends


async def test_every_finalized_award_and_nothing_else(client: httpx.AsyncClient, seeded: Seeded) -> None:
    _, rows = await download(client)
    subjects = [r["subject"] for r in rows]
    assert sorted(subjects) == sorted(Seeded.subjects(seeded.final))
    for absent in seeded.running + seeded.ended + seeded.revoked_final + seeded.revoked_running:
        assert absent.data["subject"] not in subjects
    final = await final_items(client)
    assert {r["announcement_id"] for r in rows} == set(final)


async def test_each_row_says_what_the_notice_says(client: httpx.AsyncClient, seeded: Seeded) -> None:
    _, rows = await download(client)
    final = await final_items(client)
    by_subject = {e.data["subject"]: e.data for e in seeded.final}
    for row in rows:
        item, decided = final[row["announcement_id"]], by_subject[row["subject"]]
        assert row["amount_yuan"] == item["amount"] == decided["awarded"]
        assert row["program_code"] == item["program"] and row["year"] == str(item["year"])
        assert row["applicant_code"] == decided["applicant"]["id"]
        assert row["log_index"] == str(item["log_index"])
        finalized = datetime.fromisoformat(item["finalized_at"])
        assert row["finalized_date"] == (finalized + timedelta(hours=8)).date().isoformat()
        assert int(row["finalized_log_index"]) > int(row["log_index"])
    clin = next(r for r in rows if r["subject"] == "FINAL-CLIN-1.5Y")
    assert (clin["program_name"], clin["policy_document"]) == ("基因治疗领域医疗机构临床研究资助", "沪科规〔2023〕10号")
    assert clin["applicant_name"] == "上海丙医院" and clin["amount_yuan"] == "150000000.00"
    # In the order the log finalized them.
    assert [int(r["finalized_log_index"]) for r in rows] == sorted(int(r["finalized_log_index"]) for r in rows)


async def test_the_amounts_sum_to_the_apis(client: httpx.AsyncClient) -> None:
    _, rows = await download(client)
    final = await final_items(client)
    total = sum(Decimal(r["amount_yuan"]) for r in rows)
    assert total == sum(Decimal(i["amount"]) for i in final.values()) == Decimal("181734567.89")
    assert all(len(r["amount_yuan"].split(".")[1]) == 2 for r in rows)


async def test_text_stays_text_in_a_spreadsheet_and_quotes_round_trip(client: httpx.AsyncClient) -> None:
    resp, rows = await download(client)
    odd = next(r for r in rows if r["subject"] == "FINAL-EQ-ODD")
    # A name starting with "=" would run as a formula: kept as text by a leading apostrophe; the
    # comma and the quotes it holds survive the csv module's quoting.
    assert odd["applicant_name"] == '\'=HYPERLINK("x"), "乙" 公司'
    assert '"\'=HYPERLINK(""x""), ""乙"" 公司"' in resp.content.decode("utf-8")


async def test_the_stream_pages_through_one_snapshot(
    client: httpx.AsyncClient, notice: tuple[async_sessionmaker[AsyncSession], Seeded], settings: Settings
) -> None:
    maker = notice[0]
    ctx = RoutesOnly(settings=settings, maker=maker)
    whole = (await client.get("/v1/open-data/awards.csv")).content
    for page_rows in (1, 2, 3, 1000):
        chunks = [chunk async for chunk in final_awards_csv(ctx.snapshot, page_rows=page_rows)]
        assert b"".join(chunks) == whole
        # The header, then one chunk per page of rows (a last, empty read yields nothing).
        assert len(chunks) == 1 + -(-4 // page_rows)



async def test_a_download_holds_to_the_snapshot_it_started_on(settings: Settings) -> None:
    async with scratch_schema(settings, "open_data_snap_") as maker:
        await record(maker, [award(subject=f"FINAL-{i}") for i in range(3)], now=datetime(2024, 5, 1, tzinfo=UTC))
        assert await finalize(maker) == 3
        snapshot = RoutesOnly(settings=settings, maker=maker).snapshot
        stream = final_awards_csv(snapshot, page_rows=1)
        header, first = await anext(stream), await anext(stream)
        # More awards become final while the download runs: it goes on from where it started.
        await record(maker, [award(subject="FINAL-LATER")], now=datetime(2024, 6, 1, tzinfo=UTC))
        assert await finalize(maker) == 1
        rest = [chunk async for chunk in stream]
        assert len(rest) == 2 and b"FINAL-LATER" not in b"".join([header, first, *rest])
        assert b"FINAL-LATER" in b"".join([chunk async for chunk in final_awards_csv(snapshot)])


@pytest.fixture
def seeded(notice: tuple[async_sessionmaker[AsyncSession], Seeded]) -> Seeded:
    return notice[1]
