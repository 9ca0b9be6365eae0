"""What an export does: read its rows a keyset page at a time (never all at once) and write them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from services.ledger.dashboard.domain import SHARED_POOL_NAME
from services.ledger.exports.domain import (
    COLUMNS,
    PAGE_ROWS,
    SHEETS,
    Export,
    ExportQuery,
    Row,
    award_row,
    balance_row,
    payment_row,
)
from services.ledger.exports.repository import ExportRepository
from services.ledger.exports.schemas import XlsxSheet, csv_header, csv_lines
from shared.contracts.events import ANY_BENEFICIARY


async def pages_of(export: Export, repo: ExportRepository, query: ExportQuery,
                   page_rows: int = PAGE_ROWS) -> AsyncIterator[list[Row]]:
    """The export's rows, a page at a time, in its list's order."""
    if export == "awards":
        seq: int | None = None
        while True:
            rows = await repo.awards(query.filters, after=seq, limit=page_rows)
            if rows:
                yield [award_row(r) for r in rows]
            if len(rows) < page_rows:
                return
            seq = rows[-1].journal_seq
    elif export == "payments":
        order_id: str | None = None
        while True:
            orders = await repo.orders(status=query.status, batch_id=query.batch_id, after=order_id,
                                       limit=page_rows)
            if orders:
                yield [payment_row(r, full_accounts=query.full_accounts) for r in orders]
            if len(orders) < page_rows:
                return
            order_id = orders[-1].id
    else:
        key = None
        while True:
            pools = await repo.pools(query.filters, after=key, limit=page_rows)
            names = await repo.names({b.key.beneficiary for b in pools})
            names[ANY_BENEFICIARY] = SHARED_POOL_NAME
            yield [balance_row(b.key.pool, b.key.beneficiary, names.get(b.key.beneficiary), b.key.year,
                               b.key.subject, b.cap_fen, b.committed_fen, b.held_fen) for b in pools]
            if len(pools) < page_rows:
                return
            key = pools[-1].key


async def csv_chunks(export: Export, repo: ExportRepository, query: ExportQuery) -> AsyncIterator[bytes]:
    """The CSV, a page of lines at a time as the pages are read."""
    columns = COLUMNS[export]
    yield csv_header(columns)
    async for page in pages_of(export, repo, query):
        yield csv_lines(columns, page)


async def write_xlsx_file(export: Export, repo: ExportRepository, query: ExportQuery, path: Path) -> int:
    """The XLSX written to `path`, each page handed to XlsxWriter off the event loop as it is read;
    the rows written."""
    book = await asyncio.to_thread(XlsxSheet, path, SHEETS[export], COLUMNS[export])
    try:
        async for page in pages_of(export, repo, query):
            await asyncio.to_thread(book.add, page)
    finally:
        await asyncio.to_thread(book.close)
    return book.rows
