"""Exports in tests: reading an XLSX or CSV export back (openpyxl, csv), summing its money columns
as Decimal, and summing the API's lists page by page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
from openpyxl import load_workbook


def xlsx_rows(content: bytes) -> tuple[list[str], list[tuple[Any, ...]], Any]:
    """(header, data rows, the worksheet) of the first sheet of an XLSX."""
    book = load_workbook(io.BytesIO(content), read_only=False)
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return [str(h) for h in rows[0]], rows[1:], sheet


def csv_rows(content: bytes) -> tuple[list[str], list[list[str]]]:
    assert content.startswith("\ufeff".encode()), "a BOM, so Excel reads the Chinese"
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    return rows[0], rows[1:]


def column(header: list[str], english: str) -> int:
    """The index of the column whose header ends with (or contains) its English name."""
    (index,) = [i for i, h in enumerate(header) if english in h]
    return index


def yuan_sum(values: Iterator[Any] | list[Any]) -> Decimal:
    """The sum of cells in yuan, each read exactly (a float cell by its shortest repr)."""
    return sum((Decimal(str(v)) for v in values if v not in (None, "")), Decimal("0.00"))


async def api_items(client: httpx.AsyncClient, path: str, headers: dict[str, str],
                    params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a paginated list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = {**(params or {}), "limit": 200, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError("the list never ended")
