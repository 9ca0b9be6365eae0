"""Exact money: integer fen inside, two-decimal strings on the wire.

A float never touches an amount. Rates are integer basis points (1 bp = 0.01%) and
every rate × base is rounded down to the fen, because the state must never overpay.
"""

from __future__ import annotations

import re

Fen = int

WAN_FEN: Fen = 10_000 * 100  # 万 yuan in fen
YI_FEN: Fen = 100_000_000 * 100  # 亿 yuan in fen

# Matched with fullmatch, never match + `$`: `$` also matches before a trailing newline, and
# "100.00\n" is not an amount.
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")
_TOO_PRECISE = re.compile(r"[0-9]+\.[0-9]{3,}")


class AmountError(ValueError):
    """A wire amount that is not a non-negative decimal with at most two places."""


def parse_amount(text: object) -> Fen:
    """'1600000.00' → 160000000 fen. Rejects floats, negatives, signs, exponents and a third decimal."""
    if not isinstance(text, str):
        raise AmountError('must be a decimal string such as "1600000.00"')
    if not _AMOUNT.fullmatch(text):
        if text.startswith("-"):
            raise AmountError("must not be negative")
        if _TOO_PRECISE.fullmatch(text):
            raise AmountError("must have at most two decimal places")
        raise AmountError('must be a decimal string such as "1600000.00"')
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def format_fen(amount_fen: Fen) -> str:
    """160000000 → '1600000.00'."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise TypeError("amount must be integer fen")
    sign = "-" if amount_fen < 0 else ""
    whole, frac = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{frac:02d}"


def apply_rate_bp(base_fen: Fen, rate_bp: int) -> Fen:
    """base × rate, rounded down to the fen (rate in basis points: 5000 = 50%)."""
    if base_fen < 0 or rate_bp < 0:
        raise ValueError("base and rate must be non-negative")
    return (base_fen * rate_bp) // 10_000


def yuan_label(amount_fen: Fen) -> str:
    """Human label in 万/亿 where people expect them: 1000万, 1.5亿, 2345.67元."""
    if amount_fen % YI_FEN == 0 and amount_fen >= YI_FEN:
        return f"{amount_fen // YI_FEN}亿"
    if amount_fen % WAN_FEN == 0 and amount_fen >= WAN_FEN:
        return f"{amount_fen // WAN_FEN}万"
    if amount_fen >= WAN_FEN:
        whole_wan, rest_fen = divmod(amount_fen, WAN_FEN)
        return f"{whole_wan}万" + (f"{format_fen(rest_fen)}元" if rest_fen else "")
    return f"{format_fen(amount_fen)}元"
