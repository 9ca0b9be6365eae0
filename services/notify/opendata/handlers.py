"""The open data file, written as it is read: a page of awards from the snapshot, its CSV lines,
the next page. A download holds one page of rows at a time, however many awards there are."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.opendata.domain import BOM, COLUMNS, PAGE_ROWS, csv_row
from services.notify.opendata.repository import SqlOpenDataRepository


def _lines(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


async def final_awards_csv(
    snapshot: Callable[[], AbstractAsyncContextManager[AsyncSession]], *, page_rows: int = PAGE_ROWS
) -> AsyncIterator[bytes]:
    """The CSV (UTF-8 with a BOM, RFC 4180 line ends), every finalized award, a chunk per page,
    all pages from one snapshot: the file is the notice as it stood at one instant."""
    yield (BOM.encode("utf-8") + _lines([list(COLUMNS)]))
    async with snapshot() as session:
        repo = SqlOpenDataRepository(session)
        after = -1
        while True:
            awards = await repo.final_awards(after=after, limit=page_rows)
            if not awards:
                return
            yield _lines([csv_row(a) for a in awards])
            if len(awards) < page_rows:
                return
            after = awards[-1].finalized_log_index
