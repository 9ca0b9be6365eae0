"""The export routes: filters in, a streamed file out. The dashboard's own links
(services.ledger.dashboard.api) answer through `export_response` too."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from services.ledger.deps import ContextDep, LedgerContext
from services.ledger.domain import ListFilter
from services.ledger.exports.domain import Export, ExportQuery, Format, filename
from services.ledger.exports.handlers import csv_chunks, write_xlsx_file
from services.ledger.exports.repository import ExportRepository
from services.ledger.exports.schemas import CSV_MEDIA, XLSX_MEDIA
from services.ledger.payments.schemas import BatchIdQuery, OrderStatus
from services.ledger.schemas import Beneficiary, ProgramCode, Year
from shared.web.auth import Principal, Role, require
from shared.web.openapi import AUTHENTICATED, problems

router = APIRouter(tags=["exports"], responses=problems(*AUTHENTICATED))

CHUNK_BYTES = 64 * 1024

# Who may take each export: the readers of the list it comes from (CONTRACT.md, "Exports and open data").
EXPORT_ROLES: dict[Export, tuple[Role, ...]] = {
    "awards": ("operator", "reviewer", "auditor"),
    "payments": ("payment_officer", "auditor"),
    "balances": ("operator", "reviewer", "auditor"),
}
AwardsReaderDep = Annotated[Principal, Depends(require(*EXPORT_ROLES["awards"]))]
PaymentsReaderDep = Annotated[Principal, Depends(require(*EXPORT_ROLES["payments"]))]
BalancesReaderDep = Annotated[Principal, Depends(require(*EXPORT_ROLES["balances"]))]

_FILES = {"xlsx": {"content": {XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}}}},
          "csv": {"content": {"text/csv": {"schema": {"type": "string"}}}}}


def _headers(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"}


async def _csv(ctx: LedgerContext, export: Export, query: ExportQuery) -> AsyncIterator[bytes]:
    async with ctx.snapshot() as session:  # one snapshot for the whole file, held while it streams
        async for chunk in csv_chunks(export, ExportRepository(session), query):
            yield chunk


def _open_unlinked(path: Path) -> BinaryIO:
    file = path.open("rb")
    path.unlink()
    return file


async def _file_chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


async def export_response(ctx: LedgerContext, export: Export, fmt: Format,
                          query: ExportQuery) -> StreamingResponse:
    """The export as a download: a CSV streamed as it is read; an XLSX written to a temporary file
    (unlinked before the first byte is sent: the open file is all that is left of it) and streamed."""
    name = filename(export, fmt, query)
    if fmt == "csv":
        return StreamingResponse(_csv(ctx, export, query), media_type=CSV_MEDIA, headers=_headers(name))
    fd, raw = tempfile.mkstemp(prefix="grantline-export-", suffix=".xlsx")
    os.close(fd)
    path = Path(raw)
    try:
        async with ctx.snapshot() as session:
            await write_xlsx_file(export, ExportRepository(session), query, path)
        file = await asyncio.to_thread(_open_unlinked, path)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    size = os.fstat(file.fileno()).st_size
    return StreamingResponse(_file_chunks(file), media_type=XLSX_MEDIA,
                             headers={**_headers(name), "Content-Length": str(size)})


def _awards_query(beneficiary: Beneficiary = None, year: Year = None, program: ProgramCode = None) -> ExportQuery:
    return ExportQuery(ListFilter(beneficiary, year, program))


AwardsQueryDep = Annotated[ExportQuery, Depends(_awards_query)]


@router.get("/v1/exports/awards.xlsx", response_class=StreamingResponse, responses={200: _FILES["xlsx"]})
async def awards_xlsx(_: AwardsReaderDep, ctx: ContextDep, query: AwardsQueryDep) -> StreamingResponse:
    """The awards of `/v1/awards` (same filters) as a spreadsheet: Chinese and English headers,
    amounts as numbers in yuan (`0.00`), Beijing time."""
    return await export_response(ctx, "awards", "xlsx", query)


@router.get("/v1/exports/awards.csv", response_class=StreamingResponse, responses={200: _FILES["csv"]})
async def awards_csv(_: AwardsReaderDep, ctx: ContextDep, query: AwardsQueryDep) -> StreamingResponse:
    """The awards of `/v1/awards` (same filters) as CSV (UTF-8 with BOM), streamed."""
    return await export_response(ctx, "awards", "csv", query)


@router.get("/v1/exports/balances.xlsx", response_class=StreamingResponse, responses={200: _FILES["xlsx"]})
async def balances_xlsx(_: BalancesReaderDep, ctx: ContextDep, query: AwardsQueryDep) -> StreamingResponse:
    """The pools of `/v1/balances` (same filters) as a spreadsheet."""
    return await export_response(ctx, "balances", "xlsx", query)


@router.get("/v1/exports/balances.csv", response_class=StreamingResponse, responses={200: _FILES["csv"]})
async def balances_csv(_: BalancesReaderDep, ctx: ContextDep, query: AwardsQueryDep) -> StreamingResponse:
    """The pools of `/v1/balances` (same filters) as CSV, streamed."""
    return await export_response(ctx, "balances", "csv", query)


def payments_query(principal: Principal, status: str | None, batch_id: str | None) -> ExportQuery:
    return ExportQuery(status=status, batch_id=batch_id, full_accounts="payment_officer" in principal.roles)


@router.get("/v1/exports/payments.xlsx", response_class=StreamingResponse, responses={200: _FILES["xlsx"]})
async def payments_xlsx(principal: PaymentsReaderDep, ctx: ContextDep, status: OrderStatus = None,
                        batch_id: BatchIdQuery = None) -> StreamingResponse:
    """The orders of `/v1/payment-orders` (same filters) as a spreadsheet; account numbers in full
    for payment officers only (`****0123` for everyone else)."""
    return await export_response(ctx, "payments", "xlsx", payments_query(principal, status, batch_id))


@router.get("/v1/exports/payments.csv", response_class=StreamingResponse, responses={200: _FILES["csv"]})
async def payments_csv(principal: PaymentsReaderDep, ctx: ContextDep, status: OrderStatus = None,
                       batch_id: BatchIdQuery = None) -> StreamingResponse:
    """The orders of `/v1/payment-orders` (same filters) as CSV, streamed; accounts masked but for
    payment officers."""
    return await export_response(ctx, "payments", "csv", payments_query(principal, status, batch_id))
