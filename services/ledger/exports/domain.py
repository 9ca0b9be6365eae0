"""The exports' pure parts: which columns each export has (Chinese and English), the filters, and
a stored row turned into cells. No I/O, no clock.

A row is a tuple in column order; a money cell holds integer fen (`Fen`), which the writers turn
into yuan at the very edge (schemas.yuan_decimal): never a float before the cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.ledger.domain import AWARD_PENDING, AWARD_REJECTED, ListFilter
from services.ledger.payments.domain import mask_account
from shared.web.display import beijing_time, program_label, status_label

Kind = Literal["text", "int", "money"]
Export = Literal["awards", "payments", "balances"]
Format = Literal["xlsx", "csv"]
EXPORTS: tuple[Export, ...] = ("awards", "payments", "balances")
FORMATS: tuple[Format, ...] = ("xlsx", "csv")

PAGE_ROWS = 2000  # rows per keyset page read from the database (and per batch handed to a writer)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "text"
    width: int = 14  # XLSX column width, in characters

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"


AWARD_COLUMNS: tuple[Column, ...] = (
    Column("application_id", "申请编号", "Application ID", width=24),
    Column("name", "申请单位", "Applicant", width=30),
    Column("beneficiary", "统一社会信用代码", "USCC", width=20),
    Column("program", "项目", "Program", width=40),
    Column("program_code", "项目代码", "Program code"),
    Column("year", "年度", "Year", "int", 8),
    Column("subject", "事项", "Subject", width=24),
    Column("amount", "金额（元）", "Amount (CNY)", "money", 16),
    Column("status", "状态", "Status", width=18),
    Column("decided_at", "决定时间", "Decided (Beijing time)", width=18),
    Column("top_up_of", "补足原申请", "Top-up of", width=24),
    Column("revoked_at", "撤销时间", "Revoked (Beijing time)", width=18),
    Column("revocation_reason", "撤销原因", "Revocation reason", width=30),
)

PAYMENT_COLUMNS: tuple[Column, ...] = (
    Column("order_id", "支付单号", "Order ID", width=26),
    Column("application_id", "申请编号", "Application ID", width=24),
    Column("name", "申请单位", "Applicant", width=30),
    Column("applicant_id", "统一社会信用代码", "USCC", width=20),
    Column("program", "项目", "Program", width=40),
    Column("program_code", "项目代码", "Program code"),
    Column("year", "年度", "Year", "int", 8),
    Column("amount", "金额（元）", "Amount (CNY)", "money", 16),
    Column("status", "状态", "Status", width=18),
    Column("batch_id", "批次", "Batch", width=26),
    Column("account_name", "收款户名", "Payee name", width=30),
    Column("account_number", "收款账号", "Payee account", width=24),
    Column("bank_code", "开户行行号", "Bank code (CNAPS)", width=14),
    Column("reason", "原因", "Reason", width=30),
    Column("updated_at", "更新时间", "Updated (Beijing time)", width=18),
)

BALANCE_COLUMNS: tuple[Column, ...] = (
    Column("pool", "额度", "Pool", width=30),
    Column("beneficiary", "统一社会信用代码", "Beneficiary (USCC)", width=20),
    Column("name", "单位名称", "Beneficiary name", width=30),
    Column("program", "项目", "Program", width=40),
    Column("year", "年度", "Year", "int", 8),
    Column("subject", "事项", "Subject", width=24),
    Column("cap", "上限（元）", "Cap (CNY)", "money", 16),
    Column("committed", "已用（元）", "Committed (CNY)", "money", 16),
    Column("held", "冻结（元）", "Held (CNY)", "money", 16),
    Column("available", "可用（元）", "Available (CNY)", "money", 16),
)

COLUMNS: dict[Export, tuple[Column, ...]] = {
    "awards": AWARD_COLUMNS, "payments": PAYMENT_COLUMNS, "balances": BALANCE_COLUMNS}
SHEETS: dict[Export, str] = {"awards": "资助 Awards", "payments": "支付 Payments", "balances": "额度 Balances"}


@dataclass(frozen=True)
class ExportQuery:
    """What an export is narrowed by: the awards' and balances' filters, the payment orders'."""

    filters: ListFilter = ListFilter()  # noqa: RUF009 (frozen: a shared default is safe)
    status: str | None = None  # payments
    batch_id: str | None = None  # payments
    full_accounts: bool = False  # payment officers see account numbers in full


def award_status(review: str | None, revoked: bool) -> str:
    """The awards list's status (services.ledger.schemas.AwardView): live, pending_review, rejected, revoked."""
    if review == AWARD_REJECTED:
        return "rejected"
    if revoked:
        return "revoked"
    return "pending_review" if review == AWARD_PENDING else "live"


def award_row(r: Any) -> Row:
    """A stored award (repository.ExportRepository.awards) as cells."""
    return (r.application_id, r.name or "", r.beneficiary, program_label(r.program), r.program, r.year, r.subject,
            r.amount_fen, status_label(award_status(r.review, r.revoked)), beijing_time(r.decided_at),
            r.top_up_of or "", beijing_time(r.revoked_at) if r.revoked_at is not None else "",
            r.reason or "")


def payment_row(r: Any, *, full_accounts: bool) -> Row:
    number = r.account_number if full_accounts else mask_account(r.account_number)
    return (r.id, r.application_id, r.name or "", r.applicant_id, program_label(r.program), r.program, r.year,
            r.amount_fen, status_label(r.status), r.batch_id or "", r.account_name or "", number or "",
            r.bank_code or "", r.reason or "", beijing_time(r.updated_at))


def balance_row(pool: str, beneficiary: str, name: str | None, year: int | None, subject: str | None,
                cap_fen: int, committed_fen: int, held_fen: int) -> Row:
    program = pool.split("/", 1)[0]
    return (pool, beneficiary, name or "", program_label(program) if "/" in pool else "", year, subject or "",
            cap_fen, committed_fen, held_fen, cap_fen - committed_fen)


def money_columns(columns: Sequence[Column]) -> list[int]:
    return [i for i, c in enumerate(columns) if c.kind == "money"]


def filename(export: Export, fmt: Format, query: ExportQuery) -> str:
    """`grantline-awards-2024-GT-EQUITY.xlsx`: what and which part of it (ASCII only)."""
    parts = ["grantline", export]
    f = query.filters
    parts += [str(f.year)] if f.year is not None else []
    parts += [p for p in (f.program, f.beneficiary, query.status) if p]
    safe = "-".join("".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in p)
                    for p in parts)
    return f"{safe[:120]}.{fmt}"
