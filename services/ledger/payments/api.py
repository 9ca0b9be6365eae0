"""The payment routes: orders, batches with four eyes, the pain.001, the bank's answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from services.ledger.deps import ContextDep
from services.ledger.payments.domain import Payer
from services.ledger.payments.handlers import approve_batch, create_batch, import_bank_document, send_batch
from services.ledger.payments.repository import SqlPaymentRepository
from services.ledger.payments.schemas import (
    BatchIdQuery,
    BatchRequest,
    BatchView,
    ImportView,
    OrderPage,
    OrderStatus,
    OrderView,
    UnmatchedPage,
    UnmatchedView,
)
from services.ledger.schemas import Cursor, Limit
from shared.kernel.cursors import next_page, page_after
from shared.kernel.errors import NotFound, PayloadTooLarge
from shared.web.auth import Principal, require
from shared.web.deps import JsonBodyDep, PaymentOfficerDep, XmlBodyDep, snapshot_of
from shared.web.edges import XML_MEDIA, body_limit
from shared.web.openapi import AUTHENTICATED, problems

router = APIRouter(tags=["payments"], responses=problems(*AUTHENTICATED))

# The largest bank document taken (CONTRACT.md: "say 10 MiB"): a 20,000-entry camt.054 as the bank
# simulator writes it is about 9 MiB. The edge holds these routes to it instead of the service's
# general body limit (shared.web.edges.body_limit); the route counts again while it reads.
BANK_DOCUMENT_MAX_BYTES = 10 * 1024 * 1024

PaymentReaderDep = Annotated[Principal, Depends(require("payment_officer", "operator", "auditor"))]
PaymentSnapshotDep = Annotated[SqlPaymentRepository, snapshot_of(SqlPaymentRepository)]
ORDERS_CURSOR, UNMATCHED_CURSOR = "payment-orders:", "bank-unmatched:"
_XML_BODY = {"requestBody": {"required": True, "content": {XML_MEDIA: {"schema": {"type": "string"}}}}}


def _who(principal: Principal) -> dict[str, str]:
    return principal.actor


@router.get("/v1/payment-orders", response_model=OrderPage)
async def payment_orders(principal: PaymentReaderDep, repo: PaymentSnapshotDep, status: OrderStatus = None,
                         batch_id: BatchIdQuery = None, cursor: Cursor = None, limit: Limit = 50) -> OrderPage:
    """Payment orders in id order, a page at a time. Account numbers in full for payment officers
    only; everyone else sees `masked_account` (`****0123`)."""
    after = page_after(cursor or None, ORDERS_CURSOR, str)
    rows = await repo.orders_page(status=status, batch_id=batch_id, after=after, limit=limit + 1)
    page, next_cursor = next_page(rows, limit, ORDERS_CURSOR, lambda o: o.id)
    full = "payment_officer" in principal.roles
    return OrderPage(items=[OrderView.of(o, full_account=full) for o in page], next_cursor=next_cursor)


@router.post("/v1/payment-batches", status_code=201, response_model=BatchView,
             responses=problems(400, 409, 415, 422))
async def new_batch(body: BatchRequest, principal: PaymentOfficerDep, ctx: ContextDep, _: JsonBodyDep) -> BatchView:
    """Every ready order that matches (program, year; at most `limit`) and is in no other batch,
    with its count and control sum. 409 when none matches."""
    async with ctx.unit_of_work() as session:
        batch = await create_batch(SqlPaymentRepository(session), program=body.program, year=body.year,
                                   limit=body.limit, by=_who(principal), now=datetime.now(UTC))
    return BatchView.of(batch)


@router.post("/v1/payment-batches/{batch_id}/approve", response_model=BatchView, responses=problems(404, 409))
async def approve(batch_id: str, principal: PaymentOfficerDep, ctx: ContextDep) -> BatchView:
    """Four eyes: a payment officer other than the batch's creator approves it (the creator: 409)."""
    async with ctx.unit_of_work() as session:
        batch = await approve_batch(SqlPaymentRepository(session), batch_id, by=_who(principal),
                                    now=datetime.now(UTC))
    return BatchView.of(batch)


@router.get("/v1/payment-batches/{batch_id}", response_model=BatchView, responses=problems(404))
async def batch(batch_id: str, _: PaymentReaderDep, repo: PaymentSnapshotDep) -> BatchView:
    """The batch with the count and sum of its orders by status (as they stand in this batch)."""
    found = await repo.batch(batch_id)
    if found is None:
        raise NotFound(f"no payment batch {batch_id}")
    return BatchView.of(found, await repo.batch_totals(batch_id))


@router.get("/v1/payment-batches/{batch_id}/pain.001", response_class=Response, responses=problems(404, 409))
async def pain001(batch_id: str, _: PaymentOfficerDep, ctx: ContextDep) -> Response:
    """The approved batch as ISO 20022 pain.001.001.09 (409 before approval). The first download
    sends it (orders `sent`, `payment.sent`); every download is the same bytes."""
    settings = ctx.settings
    payer = Payer(settings.payer_name, settings.payer_account, settings.payer_bank_code)
    async with ctx.unit_of_work() as session:
        document = await send_batch(SqlPaymentRepository(session), batch_id, payer=payer, now=datetime.now(UTC))
    return Response(document, media_type=XML_MEDIA,
                    headers={"Content-Disposition": f'attachment; filename="{batch_id}.pain.001.xml"'})


async def _read_xml(request: Request, max_bytes: int = BANK_DOCUMENT_MAX_BYTES) -> bytes:
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"bank documents are limited to {max_bytes} bytes")
    return bytes(body)


async def _import(request: Request, principal: Principal, ctx: ContextDep, *, statements: bool) -> ImportView:
    body = await _read_xml(request)
    result = await import_bank_document(ctx.maker, body, statements=statements, by=_who(principal))
    return ImportView(document_sha256=result.sha256, message_type=result.kind, msg_id=result.msg_id,
                      entries=result.entries, already_imported=result.already_imported, outcomes=result.outcomes)


@router.post("/v1/bank/status-reports", response_model=ImportView, openapi_extra=_XML_BODY,
             dependencies=[body_limit(BANK_DOCUMENT_MAX_BYTES)], responses=problems(409, 413, 415, 422))
async def status_report(request: Request, principal: PaymentOfficerDep, _: XmlBodyDep, ctx: ContextDep) -> ImportView:
    """A pain.002.001.10 (application/xml): RJCT fails its order with the bank's reason
    (`payment.failed`); other statuses are recorded. The same document again changes nothing."""
    return await _import(request, principal, ctx, statements=False)


@router.post("/v1/bank/statements", response_model=ImportView, openapi_extra=_XML_BODY,
             dependencies=[body_limit(BANK_DOCUMENT_MAX_BYTES)], responses=problems(409, 413, 415, 422))
async def statement(request: Request, principal: PaymentOfficerDep, _: XmlBodyDep, ctx: ContextDep) -> ImportView:
    """A camt.054.001.08 or camt.053.001.08 (application/xml): a booked debit whose EndToEndId is a
    sent order settles it, return information returns it (back to awaiting_payee), anything else
    is kept as unmatched. The same document again changes nothing."""
    return await _import(request, principal, ctx, statements=True)


@router.get("/v1/bank/unmatched", response_model=UnmatchedPage)
async def unmatched(_: PaymentReaderDep, repo: PaymentSnapshotDep, cursor: Cursor = None,
                    limit: Limit = 50) -> UnmatchedPage:
    """Statement and status entries that matched no order as they stood, oldest first."""

    def parse(key: str) -> tuple[str, str, int]:
        t, h, p = key.split("|")
        return t, h, int(p)

    after = page_after(cursor or None, UNMATCHED_CURSOR, parse)
    rows = await repo.unmatched_page(after=after, limit=limit + 1)
    page, next_cursor = next_page(rows, limit, UNMATCHED_CURSOR,
                                  lambda r: f"{r.recorded_at.isoformat()}|{r.document_sha256}|{r.position}")
    return UnmatchedPage(items=[UnmatchedView.of(r) for r in page], next_cursor=next_cursor)
