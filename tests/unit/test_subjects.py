"""Subject normalisation: every look-alike of one subject is one subject (issue 12's attack)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.subjects import SubjectRefused, subject_key

CANONICAL = "CAR-T 1"


@pytest.mark.parametrize(
    "look_alike",
    [
        "car-t-1",  # lower case, another separator
        "CAR-T 1 ",  # a trailing space
        "ＣＡＲ－Ｔ－１",  # full-width letters and hyphen
        "CAR_T.1",  # the other separators CONTRACT.md names
        "CAR/T·1",
        "CAR—T 1",
        "CАR-T 1",  # Cyrillic А (U+0410) for the Latin A
        "CAR-Т 1",  # Cyrillic Т (U+0422)
        "ＣAR-T-1",
    ],
)
def test_look_alikes_fold_to_one_key(look_alike: str) -> None:
    assert subject_key(look_alike) == subject_key(CANONICAL)


def test_a_cyrillic_o_is_a_latin_o() -> None:
    assert subject_key("ОNCO-7") == subject_key("ONCO-7")  # U+041E


def test_nfd_and_nfc_accents_are_one_subject() -> None:
    word = "Thérapie-1"
    assert subject_key(unicodedata.normalize("NFD", word)) == subject_key(unicodedata.normalize("NFC", word))


def test_distinct_subjects_stay_distinct() -> None:
    assert subject_key("CAR-T 1") != subject_key("CAR-T 2")
    assert subject_key("基因治疗产品甲") != subject_key("基因治疗产品乙")


@pytest.mark.parametrize(
    "hidden",
    [
        "CAR\u200dT1",  # zero-width joiner
        "CAR\u200bT1",  # zero-width space
        "CAR-T\u00a01",  # no-break space
        "\ufeffCAR-T 1",  # byte-order mark
        "CAR-T\t1",  # a control character
        "CAR\u202eT1",  # right-to-left override
    ],
)
def test_invisible_or_format_characters_are_refused(hidden: str) -> None:
    with pytest.raises(SubjectRefused, match="invisible"):
        subject_key(hidden)


def test_a_subject_of_separators_only_is_refused() -> None:
    with pytest.raises(SubjectRefused):
        subject_key(" - _ ")


def test_lower_case_cyrillic_look_alikes_are_latin_too() -> None:
    assert subject_key("саr-т 1") == subject_key("car-t 1")  # Cyrillic с, а, т


def test_digit_one_capital_i_and_small_l_are_one_character() -> None:
    assert subject_key("LOT-1") == subject_key("LOT-l") == subject_key("LOT-I")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cf", "Cc", "Zl", "Zp", "Zs", "Cs")), min_size=1, max_size=30))
@settings(max_examples=500, deadline=None)
def test_a_key_is_its_own_key(subject: str) -> None:
    try:
        key = subject_key(subject)
    except SubjectRefused:
        return
    assert subject_key(key) == key
