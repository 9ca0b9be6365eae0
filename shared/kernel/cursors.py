"""Opaque page cursors: the last row's position in its list, tagged with the list it belongs to,
so that a cursor from one list is refused by another. The position is a sequence number
(`encode_cursor`), or a text key for a list ordered by one (`encode_key_cursor`)."""

from __future__ import annotations

import base64
import binascii

_INT64_MAX = 2**63 - 1


def encode_cursor(seq: int, tag: str) -> str:
    return encode_key_cursor(str(seq), tag)


def decode_cursor(cursor: str, tag: str) -> int:
    """The sequence number; ValueError for anything this API did not hand out."""
    digits = decode_key_cursor(cursor, tag)
    # The bound keeps a forged cursor out of a bigint comparison (a database error, not a 422).
    if not digits.isdigit() or int(digits) > _INT64_MAX:
        raise ValueError("not a cursor returned by this API")
    return int(digits)


def encode_key_cursor(key: str, tag: str) -> str:
    return base64.urlsafe_b64encode(f"{tag}{key}".encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str, tag: str) -> str:
    """The key (never empty); ValueError for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor returned by this API") from exc
    # NUL never reaches PostgreSQL (text refuses it: a database error, not a 422).
    if not raw.startswith(tag) or len(raw) == len(tag) or "\x00" in raw:
        raise ValueError("not a cursor returned by this API")
    return raw[len(tag):]
