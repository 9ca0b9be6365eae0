"""Opaque page cursors: the last row's position in its list, tagged with the list it belongs to,
so that a cursor from one list is refused by another. The position is a sequence number
(`encode_cursor`), or a text key for a list ordered by one (`encode_key_cursor`).

Every list reads a page the same way: where it starts (`page_after`: a 422 naming `cursor` for
one this API did not hand out), `limit + 1` rows from there, then `next_page`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.kernel.errors import FieldProblem, ValidationFailed

K = TypeVar("K")
T = TypeVar("T")

_INT64_MAX = 2**63 - 1


def encode_cursor(seq: int, tag: str) -> str:
    return encode_key_cursor(str(seq), tag)


def decode_cursor(cursor: str, tag: str) -> int:
    """The sequence number; ValueError for anything this API did not hand out."""
    return parse_seq(decode_key_cursor(cursor, tag))


def parse_seq(key: str) -> int:
    """A sequence number's key read back; ValueError for anything `encode_cursor` did not write."""
    # The bound keeps a forged cursor out of a bigint comparison (a database error, not a 422).
    if not key.isdigit() or int(key) > _INT64_MAX:
        raise ValueError("not a cursor returned by this API")
    return int(key)


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


def page_after(cursor: str | None, tag: str, parse: Callable[[str], K]) -> K | None:
    """Where a page of the list `tag` starts: after the row `cursor` names (its key read by `parse`,
    e.g. `parse_seq`), or None for the first page. ValidationFailed (a 422 naming `cursor`) for a
    cursor this API did not hand out, or one of another list (`parse` raises ValueError)."""
    if cursor is None:
        return None
    try:
        return parse(decode_key_cursor(cursor, tag))
    except ValueError as exc:
        raise ValidationFailed("bad cursor", errors=[FieldProblem("cursor", str(exc))]) from exc


def next_page(rows: Sequence[T], limit: int, tag: str, key: Callable[[T], int | str]) -> tuple[list[T], str | None]:
    """The page in `rows` (read with `limit + 1`: a row more means there is a next page) and the
    next page's cursor, naming the page's last row by `key` (its sequence number or text key)."""
    page = list(rows[:limit])
    return page, encode_key_cursor(str(key(page[-1])), tag) if len(rows) > limit else None
