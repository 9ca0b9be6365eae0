"""GB 32100-2015 unified social credit codes: the mod-31 check character."""

from __future__ import annotations

import pytest

from shared.kernel.uscc import (
    check_character,
    is_valid_uscc,
    registered_in_shanghai,
    uscc_problem,
    with_check_character,
)


def test_the_contract_example_is_valid() -> None:
    assert is_valid_uscc("91310115MA1H7G0L0C")


@pytest.mark.parametrize(
    "prefix", ["91310115MA1H7G0L0", "12310000425006117", "91310000MA1FL1234", "11100000000013127"]
)
def test_completed_codes_validate(prefix: str) -> None:
    assert uscc_problem(with_check_character(prefix)) is None


def test_every_wrong_check_character_is_refused() -> None:
    prefix = "91310115MA1H7G0L0"
    right = check_character(prefix)
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        assert is_valid_uscc(prefix + c) == (c == right)


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("91310115MA1H7G0L0", "18 characters"),
        ("91310115MA1H7G0LOC", "alphabet"),  # letter O is not in the alphabet
        ("9131A115MA1H7G0L0C", "region"),
        ("91310115MA1H7G0L0D", "check character"),
        (91310115, "string"),
    ],
)
def test_problems_are_explained(code: object, fragment: str) -> None:
    problem = uscc_problem(code)
    assert problem is not None and fragment in problem


def test_the_region_code_says_whether_the_code_was_issued_in_shanghai() -> None:
    assert registered_in_shanghai(with_check_character("91310115MA1H7G0L0"))  # Pudong
    assert registered_in_shanghai(with_check_character("12310000425006117"))  # a Shanghai hospital
    assert not registered_in_shanghai(with_check_character("91110108MA01ABCD0"))  # Beijing Haidian
    assert not registered_in_shanghai(with_check_character("91320500MA1MXXXX0"))  # Suzhou
