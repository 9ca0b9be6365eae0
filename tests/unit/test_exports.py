"""The export writers without servers: headers in Chinese and English, amounts as numbers in yuan
with two decimals (exact from integer fen), text never turned into a formula, CSV likewise; and a
100,000-row XLSX written with flat memory (rows from a generator, resident memory sampled at every page)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from services.ledger.domain import ListFilter
from services.ledger.exports.domain import AWARD_COLUMNS, BALANCE_COLUMNS, ExportQuery, Row, filename
from services.ledger.exports.schemas import csv_header, csv_lines, write_xlsx, yuan_decimal
from tests.support.exports import column, csv_rows, xlsx_rows, yuan_sum


def award(i: int, amount_fen: int, name: str = "上海某某生物科技有限公司") -> Row:
    return (f"app_{i:08d}", name, "91310000MA1K000000", "基因治疗产品上市资金支持（沪科规〔2023〕10号）",
            "GT-PRODUCT", 2024, f"PRODUCT-{i}", amount_fen, "有效 live", "2024-06-01 17:00", "", "", "")


def test_yuan_decimal_is_exact() -> None:
    assert yuan_decimal(12345) == Decimal("123.45")
    assert yuan_decimal(1) == Decimal("0.01")
    assert yuan_decimal(999_999_999_999_99) == Decimal("999999999999.99")
    assert str(yuan_decimal(300_000_000_000)) == "3000000000.00"


def test_an_xlsx_has_both_headers_amounts_as_numbers_and_text_as_text(tmp_path: Path) -> None:
    amounts = [1, 7, 10, 30_000_000_00, 123_456_789_01]
    rows = [award(i, a) for i, a in enumerate(amounts)]
    rows.append(award(99, 5, name="=HYPERLINK(\"http://evil.example\")"))
    path = tmp_path / "awards.xlsx"
    assert write_xlsx(path, "资助 Awards", AWARD_COLUMNS, [rows[:3], rows[3:]]) == len(rows)
    header, data, sheet = xlsx_rows(path.read_bytes())
    assert header[0] == "申请编号 Application ID" and "金额（元） Amount (CNY)" in header
    amount = column(header, "Amount (CNY)")
    assert all(isinstance(r[amount], float | int) for r in data), "amounts are numbers, not text"
    assert sheet.cell(row=2, column=amount + 1).number_format == "0.00"
    assert yuan_sum(r[amount] for r in data) == yuan_decimal(sum(amounts) + 5)
    assert [Decimal(str(r[amount])) for r in data[:3]] == [Decimal("0.01"), Decimal("0.07"), Decimal("0.1")]
    assert data[-1][1] == "=HYPERLINK(\"http://evil.example\")", "a name starting with = stays text"
    assert sheet.cell(row=len(rows) + 1, column=2).data_type == "s"
    assert data[0][column(header, "Year")] == 2024


def test_a_csv_has_a_bom_both_headers_and_two_decimal_amounts() -> None:
    rows = [award(1, 30_000_000_00), award(2, 5, name="=cmd|' /C calc'!A0"), award(3, 1, name="-2+3")]
    content = csv_header(AWARD_COLUMNS) + csv_lines(AWARD_COLUMNS, rows)
    header, data = csv_rows(content)
    assert header[column(header, "Amount (CNY)")] == "金额（元） Amount (CNY)"
    assert [r[column(header, "Amount (CNY)")] for r in data] == ["30000000.00", "0.05", "0.01"]
    assert data[1][1].startswith("'=") and data[2][1] == "'-2+3", "formula-looking text is defused"
    assert yuan_sum(r[column(header, "Amount (CNY)")] for r in data) == Decimal("30000000.06")


def test_balances_columns_have_four_money_columns() -> None:
    assert [c.en for c in BALANCE_COLUMNS if c.kind == "money"] == [
        "Cap (CNY)", "Committed (CNY)", "Held (CNY)", "Available (CNY)"]


def test_filenames_say_what_and_stay_ascii() -> None:
    q = ExportQuery(ListFilter(beneficiary="上海\"x", year=2024, program="GT-EQUITY"))
    assert filename("awards", "xlsx", q) == "grantline-awards-2024-GT-EQUITY-___x.xlsx"
    assert filename("payments", "csv", ExportQuery(status="ready")) == "grantline-payments-ready.csv"


ROWS = 100_000
NARROW = (AWARD_COLUMNS[0], AWARD_COLUMNS[1], AWARD_COLUMNS[7])  # text, Chinese text, money


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_100000_row_xlsx_is_written_with_flat_memory(tmp_path: Path) -> None:
    """constant_memory: each row is flushed as it is written, so resident memory does not grow
    with the rows (they come from a generator, a page at a time, as from the database). RSS is
    sampled at every page (tracemalloc would triple the time; `make bench` reports its peak for
    full award rows)."""
    samples: list[int] = []

    def pages() -> Iterator[list[Row]]:
        for start in range(0, ROWS, 2000):
            samples.append(_rss_bytes())
            yield [(f"app_{i:08d}", "上海某某生物科技有限公司", 100_000_00 + i)
                   for i in range(start, min(ROWS, start + 2000))]

    path = tmp_path / "big.xlsx"
    assert write_xlsx(path, "资助 Awards", NARROW, pages()) == ROWS
    grown = max(samples) - samples[5]  # after the writer and its buffers are set up
    # The 100,000 rows held at once would be about 30 MB of Python objects; flushed, nothing grows.
    assert grown < 4 * 1024 * 1024, f"RSS grew {grown / 1e6:.1f} MB while writing"
    assert path.stat().st_size > 1_000_000

