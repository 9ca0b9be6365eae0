"""Amounts are matched in full (shared.kernel.money.parse_amount): nothing before or after the
digits, not even the newline a `$` anchor lets through."""

from __future__ import annotations

import pytest

from shared.kernel.money import AmountError, parse_amount


@pytest.mark.parametrize(
    "bad",
    ["100.00\n", "100\n", "100.00\r\n", "\n100.00", "100.00 ", "100.00\t", "1.234\n", "0\n", "100.00\x00",
     "１００.00", "١٠٠"],
)
def test_an_amount_with_anything_around_it_is_refused(bad: str) -> None:
    with pytest.raises(AmountError, match="decimal string"):
        parse_amount(bad)


def test_the_same_amount_without_the_newline_is_accepted() -> None:
    assert parse_amount("100.00") == 10_000


def test_a_third_decimal_followed_by_a_newline_is_refused_as_malformed() -> None:
    # Not "at most two decimal places": the newline makes it no decimal at all.
    with pytest.raises(AmountError) as caught:
        parse_amount("1.234\n")
    assert "two decimal places" not in str(caught.value)
