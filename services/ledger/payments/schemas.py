"""The payments' request and response models (amounts as "0.00" strings)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from services.ledger.payments.domain import ORDER_STATES, Batch, Order, mask_account
from shared.kernel.money import format_fen

OrderStatus = Annotated[str | None, Query(pattern="^(" + "|".join(ORDER_STATES) + ")$")]
BatchIdQuery = Annotated[str | None, Query(max_length=64)]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str | None = Field(default=None, max_length=64)
    year: int | None = Field(default=None, ge=2000, le=2100)
    limit: int = Field(default=1000, ge=1, le=20_000)


class PayeeView(BaseModel):
    account_name: str
    account_number: str | None = None  # payment officers only
    masked_account: str
    bank_code: str


class OrderView(BaseModel):
    id: str
    application_id: str
    partner_id: str | None
    applicant_id: str
    program: str
    year: int
    amount: str
    status: str
    batch_id: str | None
    reason_code: str | None
    reason: str | None
    updated_at: str
    payee: PayeeView | None

    @staticmethod
    def of(order: Order, *, full_account: bool) -> OrderView:
        payee = None
        if order.payee is not None:
            payee = PayeeView(account_name=order.payee.account_name,
                              account_number=order.payee.account_number if full_account else None,
                              masked_account=mask_account(order.payee.account_number) or "",
                              bank_code=order.payee.bank_code)
        return OrderView(id=order.id, application_id=order.application_id, partner_id=order.partner_id,
                         applicant_id=order.applicant_id, program=order.program, year=order.year,
                         amount=format_fen(order.amount_fen), status=order.status, batch_id=order.batch_id,
                         reason_code=order.reason_code, reason=order.reason, updated_at=order.updated_at, payee=payee)


class OrderPage(BaseModel):
    items: list[OrderView]
    next_cursor: str | None


class StatusTotal(BaseModel):
    count: int
    sum: str


class BatchView(BaseModel):
    id: str
    status: str
    program: str | None
    year: int | None
    count: int
    control_sum: str
    created_by: dict[str, Any]
    created_at: str
    approved_by: dict[str, Any] | None
    approved_at: str | None
    sent_at: str | None
    by_status: dict[str, StatusTotal] | None = None

    @staticmethod
    def of(batch: Batch, totals: dict[str, tuple[int, int]] | None = None) -> BatchView:
        return BatchView(
            id=batch.id, status=batch.status, program=batch.program, year=batch.year, count=batch.count,
            control_sum=format_fen(batch.control_sum_fen), created_by=batch.created_by, created_at=batch.created_at,
            approved_by=batch.approved_by, approved_at=batch.approved_at, sent_at=batch.sent_at,
            by_status=None if totals is None else {s: StatusTotal(count=n, sum=format_fen(f))
                                                   for s, (n, f) in totals.items()})


class ImportView(BaseModel):
    document_sha256: str
    message_type: str
    msg_id: str
    entries: int
    already_imported: bool
    outcomes: dict[str, int]


class UnmatchedView(BaseModel):
    document_sha256: str
    message_type: str
    msg_id: str
    position: int
    path: str
    end_to_end_id: str | None
    amount: str | None
    status: str
    order_id: str | None
    reason_code: str | None
    note: str | None
    recorded_at: str

    @staticmethod
    def of(r: Any) -> UnmatchedView:
        return UnmatchedView(document_sha256=r.document_sha256, message_type=r.kind, msg_id=r.msg_id,
                             position=r.position, path=r.path, end_to_end_id=r.end_to_end_id,
                             amount=None if r.amount_fen is None else format_fen(r.amount_fen), status=r.status,
                             order_id=r.order_id, reason_code=r.reason_code, note=r.note,
                             recorded_at=r.recorded_at.isoformat())


class UnmatchedPage(BaseModel):
    items: list[UnmatchedView]
    next_cursor: str | None
