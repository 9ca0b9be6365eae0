"""Opaque page cursors for newest-first lists: the last row's sequence number, tagged with the
list it belongs to, so that a cursor from one list is refused by another."""

from __future__ import annotations

import base64
import binascii

_INT64_MAX = 2**63 - 1


def encode_cursor(seq: int, tag: str) -> str:
    return base64.urlsafe_b64encode(f"{tag}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str) -> int:
    """The sequence number; ValueError for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor returned by this API") from exc
    digits = raw[len(tag):]
    # The bound keeps a forged cursor out of a bigint comparison (a database error, not a 422).
    if not raw.startswith(tag) or not digits.isdigit() or int(digits) > _INT64_MAX:
        raise ValueError("not a cursor returned by this API")
    return int(digits)
