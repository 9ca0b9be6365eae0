"""Exports in tests: reading an XLSX or CSV export back (openpyxl, csv), summing its money columns
as Decimal, summing the API's lists page by page, and a ledger seeded with something of everything."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config.settings import Settings
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS
from tests.support.ledger import assessed, ledger_loop, new_applicant, process, receipt
from tests.support.payments import finalized, finalized_loop, payee, payees_loop, received_with_payee


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
    """The index of the column whose header is `<Chinese> <english>`."""
    (index,) = [i for i, h in enumerate(header) if h.split(" ", 1)[-1] == english]
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


# ---------------------------------------------------------------------------------------------
# A ledger with something of everything to export and chart
# ---------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What `seed_ledger` made: awards (auto and held), one revoked, finalized ones with payees
    (their payment orders), a call's budget."""

    applicants: list[str]
    names: dict[str, str]  # applicant code → name
    awards: list[dict[str, Any]]  # the receipts
    held: list[dict[str, Any]]
    paid: list[dict[str, Any]]  # finalized with a payee: a ready order each
    call_id: str


async def seed_ledger(maker: async_sessionmaker[AsyncSession], settings: Settings, *,
                      tag: str = "", names: tuple[str, ...] = ("上海甲生物科技有限公司", "上海乙医药有限公司",
                                                               "上海丙基因技术有限公司")) -> Seeded:
    """Through the ledger's real consumers (decide, payees, finalized): a GT-EQUITY award per
    applicant (auto), a GT-PRODUCT hold per applicant under one call with a budget, and the first
    two GT-EQUITY awards finalized: the first with a payee (its order ready), the second without
    (awaiting its payee)."""
    tag = tag or secrets.token_hex(3)
    decide, payees, finals = (ledger_loop(maker, settings), payees_loop(maker, settings),
                              finalized_loop(maker, settings))
    applicants = [new_applicant() for _ in names]
    call_id = f"call_{tag}"
    awards, held, paid = [], [], []
    for i, (applicant, name) in enumerate(zip(applicants, names, strict=True)):
        r = receipt("GT-EQUITY", applicant, f"ROUND-{tag}-{i}", f"{(i + 1) * 1000000 + i}.{i:02d}", review="auto")
        r["applicant"]["name"] = name
        if i == 0:
            await process(payees, [received_with_payee(r, payee("6222020000001234", name))], topic=APPLICATIONS)
        awards.append(r)
        h = receipt("GT-PRODUCT", applicant, f"PRODUCT-{tag}-{i}", "5000000.00", review="required",
                    requested="5000000.00", call=(call_id, "20000000.00"))
        h["applicant"]["name"] = name
        held.append(h)
    await process(decide, [assessed(r) for r in awards + held])
    for r in awards[:2]:
        await process(finals, [finalized(r, r["entitlement"])], topic=ANNOUNCEMENTS)
        paid.append(r)
    return Seeded(applicants, dict(zip(applicants, names, strict=True)), awards, held, paid, call_id)
