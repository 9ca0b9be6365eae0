"""The one formatting module of the pages: Beijing time, 万元 exactly, Chinese names with 文号."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.web.display import (
    beijing_date,
    beijing_time,
    money_html,
    program_label,
    status_label,
    wan_yuan,
    yuan,
)


def test_times_are_shown_in_beijing_time_to_the_minute() -> None:
    assert beijing_time("2026-11-30T09:28:37.123456+00:00") == "2026-11-30 17:28"
    assert beijing_time(datetime(2026, 11, 30, 16, 5, tzinfo=UTC)) == "2026-12-01 00:05"
    assert beijing_time(datetime(2026, 11, 30, 16, 5)) == "2026-12-01 00:05"  # naive = UTC
    assert beijing_date("2026-11-30T16:00:00Z") == "2026-12-01"
    assert beijing_time(None) == ""


@pytest.mark.parametrize(("fen", "shown"), [
    (30_000_000_00, "3000万元"),
    (150_000_000_00, "1.5亿元"),
    (1_234_567_89, "123.456789万元"),
    (5_000_00, "5,000.00元"),
    (10_000_00, "1万元"),
    (0, "0.00元"),
    (100_000_000_01, "1.0000000001亿元"),
])
def test_amounts_in_wan_and_yi_yuan_exactly(fen: int, shown: str) -> None:
    assert wan_yuan(fen) == shown


@given(st.integers(min_value=0, max_value=10**15))
def test_the_wan_figure_is_never_rounded(fen: int) -> None:
    shown = wan_yuan(fen)
    if shown.endswith("亿元"):
        number, unit = shown[:-2], 10**10
    elif shown.endswith("万元"):
        number, unit = shown[:-2], 10**6
    else:
        assert shown == yuan(fen)
        return
    whole, _, frac = number.partition(".")
    assert int(whole) * unit + (int(frac.ljust(len(str(unit)) - 1, "0")) if frac else 0) == fen


def test_the_exact_yuan_is_on_hover_and_escaped() -> None:
    assert money_html(1_234_567_89) == (
        '<span class="amount" title="1,234,567.89元" aria-label="1,234,567.89元">123.456789万元</span>'
    )


def test_programs_by_chinese_name_and_document_number() -> None:
    assert program_label("GT-PRODUCT") == "基因治疗产品上市资金支持（沪科规〔2023〕10号）"
    assert program_label("CT-PRODUCT") == "细胞治疗产品上市资金支持（沪科合〔2022〕29号）"
    assert program_label("NO-SUCH") == "NO-SUCH"


def test_statuses_in_chinese_with_the_code_beside() -> None:
    assert status_label("approved") == "已核准 approved"
    assert status_label("settled") == "已到账 settled"
    assert status_label("something_new") == "something_new"
