"""Unified social credit code (统一社会信用代码) validation, GB 32100-2015.

18 characters: registration authority (1), kind (1), region code (6 digits), organisation
code (9) and a check character computed mod 31 over the first 17 with fixed weights.
The alphabet leaves out I, O, S, V and Z.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: object) -> str | None:
    """None when valid, otherwise a sentence saying what is wrong."""
    if not isinstance(code, str):
        return "must be a string"
    if len(code) != 18:
        return "must be 18 characters"
    bad = [c for c in code if c not in _VALUE]
    if bad:
        return f"contains characters outside GB 32100-2015's alphabet: {''.join(sorted(set(bad)))!r}"
    if not code[2:8].isdigit():
        return "characters 3-8 must be the administrative region code (digits)"
    if check_character(code[:17]) != code[17]:
        return "check character does not match (GB 32100-2015)"
    return None


def is_valid_uscc(code: object) -> bool:
    return uscc_problem(code) is None


def with_check_character(first17: str) -> str:
    """Complete a 17-character prefix into a valid code (test data, fixtures)."""
    return first17 + check_character(first17)


# GB/T 2260: the first two digits of the administrative division are the province-level unit;
# 31 is Shanghai.
SHANGHAI_PROVINCE_CODE = "31"


def region_code(code: str) -> str:
    """The registering authority's administrative division (characters 3-8) of a valid code."""
    return code[2:8]


def registered_in_shanghai(code: str) -> bool:
    """Whether a valid code was issued by a Shanghai registering authority (002 §一(三) asks for
    a Shanghai-registered applicant; the code says so itself, whatever the applicant declares)."""
    return region_code(code).startswith(SHANGHAI_PROVINCE_CODE)
