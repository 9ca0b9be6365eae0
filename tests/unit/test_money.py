"""Exact money: integer fen inside, two-decimal strings on the wire, rates rounded down."""

from __future__ import annotations

import pytest

from shared.kernel.money import AmountError, apply_rate_bp, format_fen, parse_amount, yuan_label


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0", 0), ("0.00", 0), ("1", 100), ("1.5", 150), ("30000.01", 3000001), ("1600000.00", 160000000)],
)
def test_parse_amount_gives_integer_fen(text: str, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize("bad", ["1.234", "-1.00", "+1", "1e5", "", " 1", "01", "1.", ".5", "NaN", "1,000"])
def test_parse_amount_refuses_what_is_not_a_two_decimal_amount(bad: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(bad)


@pytest.mark.parametrize("not_text", [1.5, 100, None, True])
def test_parse_amount_refuses_numbers_on_the_wire(not_text: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(not_text)


def test_three_decimals_and_negatives_get_their_own_message() -> None:
    with pytest.raises(AmountError, match="two decimal"):
        parse_amount("1.234")
    with pytest.raises(AmountError, match="negative"):
        parse_amount("-5")


def test_format_round_trips() -> None:
    for fen in (0, 1, 99, 100, 3000001, 10**12):
        assert parse_amount(format_fen(fen)) == fen
    assert format_fen(-150) == "-1.50"
    with pytest.raises(TypeError):
        format_fen(1.0)  # type: ignore[arg-type]


def test_rate_rounds_down_never_up() -> None:
    # CT-INSURANCE: 50% of 30000.01 is 15000.005 → 15000.00 (001 §四(四)11)
    assert format_fen(apply_rate_bp(parse_amount("30000.01"), 5000)) == "15000.00"
    assert apply_rate_bp(199, 5000) == 99
    assert apply_rate_bp(parse_amount("300000000.00"), 200) == parse_amount("6000000.00")
    with pytest.raises(ValueError):
        apply_rate_bp(-1, 100)


def test_labels_use_wan_and_yi_where_people_expect_them() -> None:
    assert yuan_label(parse_amount("10000000.00")) == "1000万"
    assert yuan_label(parse_amount("100000000.00")) == "1亿"
    assert yuan_label(parse_amount("12345.67")) == "1万2345.67元"
    assert yuan_label(parse_amount("99.50")) == "99.50元"
