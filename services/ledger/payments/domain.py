"""The payments' pure parts: order and batch states, masking, the journal postings of each step,
and what a bank entry does to an order. No I/O, no clock."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Literal

from services.ledger.journal.domain import Posting, payable_account
from shared.kernel.money import Fen

# Order states. A return puts the order back to awaiting_payee (CONTRACT.md, "Payments"); a failed
# order waits likewise for a corrected payee.
AWAITING_PAYEE, READY, SENT, SETTLED, FAILED, CANCELLED = (
    "awaiting_payee", "ready", "sent", "settled", "failed", "cancelled")
ORDER_STATES = (AWAITING_PAYEE, READY, SENT, SETTLED, FAILED, CANCELLED)
# An order waiting for a payee becomes ready when one arrives (a failed one too: a rejection is
# nearly always a wrong account).
WAITING_FOR_PAYEE = (AWAITING_PAYEE, FAILED)
MONEY_LEFT = (SENT, SETTLED)  # states in which an award can no longer be revoked

# Batch states.
BATCH_CREATED, BATCH_APPROVED, BATCH_SENT = "created", "approved", "sent"

# What a batch item (one order in one batch) became.
ITEM_SENT, ITEM_SETTLED, ITEM_FAILED, ITEM_RETURNED = "sent", "settled", "failed", "returned"

# Bank entry outcomes.
Outcome = Literal["settled", "returned", "failed", "accepted", "unmatched", "duplicate"]

POSTING, PAYMENT_SENT, PAYMENT_SETTLED, PAYMENT_FAILED, PAYMENT_RETURNED, PAYMENT_CANCELLED = (
    "posting", "payment_sent", "payment_settled", "payment_failed", "payment_returned", "payment_cancelled")
PAYMENT_KINDS = (POSTING, PAYMENT_SENT, PAYMENT_SETTLED, PAYMENT_FAILED, PAYMENT_RETURNED, PAYMENT_CANCELLED)

_CNAPS = re.compile(r"[0-9]{12}")


def new_order_id() -> str:
    return "pay_" + secrets.token_hex(10)


def new_batch_id() -> str:
    # MsgId and PmtInfId are at most 35 characters (Max35Text)
    return "bat_" + secrets.token_hex(10)


def mask_account(number: str | None) -> str | None:
    """`****0123`: the last four characters, never more (a number of four or fewer shows none)."""
    if number is None:
        return None
    return "****" + (number[-4:] if len(number) > 4 else "")


def valid_cnaps(code: str) -> bool:
    return bool(_CNAPS.fullmatch(code))


# ---------------------------------------------------------------------------------------------
# Journal accounts and postings
# ---------------------------------------------------------------------------------------------


def order_account(order_id: str) -> str:
    return f"order:{order_id}"


def transit_account(order_id: str) -> str:
    return f"transit:{order_id}"


def paid_account(beneficiary: str) -> str:
    return f"paid:{beneficiary}"


def _move(source: str, target: str, amount_fen: Fen) -> tuple[Posting, ...]:
    if amount_fen <= 0:
        raise ValueError("a payment step moves a positive amount")
    return Posting(source, -amount_fen), Posting(target, amount_fen)


def posting_postings(order_id: str, beneficiary: str, amount_fen: Fen) -> tuple[Posting, ...]:
    """Finalisation: what the beneficiary is owed becomes this order's."""
    return _move(payable_account(beneficiary), order_account(order_id), amount_fen)


def sent_postings(order_id: str, amount_fen: Fen) -> tuple[Posting, ...]:
    return _move(order_account(order_id), transit_account(order_id), amount_fen)


def settled_postings(order_id: str, beneficiary: str, amount_fen: Fen) -> tuple[Posting, ...]:
    return _move(transit_account(order_id), paid_account(beneficiary), amount_fen)


def back_postings(order_id: str, amount_fen: Fen) -> tuple[Posting, ...]:
    """A rejection or a return: the transit entry reversed (the money is owed again)."""
    return _move(transit_account(order_id), order_account(order_id), amount_fen)


def cancel_postings(order_id: str, beneficiary: str, amount_fen: Fen) -> tuple[Posting, ...]:
    """An order not yet sent, cancelled because its award is revoked: owed to the beneficiary
    again, which the revocation then takes back."""
    return _move(order_account(order_id), payable_account(beneficiary), amount_fen)


# ---------------------------------------------------------------------------------------------
# Orders, batches, bank entries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayeeRecord:
    account_name: str
    account_number: str
    bank_code: str

    @property
    def masked(self) -> str:
        masked = mask_account(self.account_number)
        assert masked is not None
        return masked


@dataclass(frozen=True)
class Order:
    id: str
    application_id: str
    partner_id: str | None
    applicant_id: str
    program: str
    year: int
    amount_fen: Fen
    status: str
    batch_id: str | None
    reason_code: str | None
    reason: str | None
    updated_at: str  # RFC 3339, the last step's recorded time
    payee: PayeeRecord | None  # as the order stands: the payee sent, or the one it would send


@dataclass(frozen=True)
class BatchItem:
    """One order in one batch, with the creditor as it was when the batch was approved for sending."""

    order_id: str
    application_id: str
    applicant_id: str
    amount_fen: Fen
    account_name: str
    account_number: str
    bank_code: str


@dataclass(frozen=True)
class Batch:
    id: str
    status: str
    program: str | None
    year: int | None
    count: int
    control_sum_fen: Fen
    created_by: dict[str, str]
    approved_by: dict[str, str] | None
    created_at: str
    approved_at: str | None
    sent_at: str | None


@dataclass(frozen=True)
class Payer:
    """The debtor: the treasury's account (settings)."""

    name: str
    account: str
    bank_code: str


@dataclass(frozen=True)
class BankEntry:
    """One transaction of a bank document, as the codec read it: a pain.002 transaction status
    or a camt entry. `path` names it in the document (for the 422s and the unmatched list)."""

    index: int
    path: str
    end_to_end_id: str | None
    amount_fen: Fen | None
    currency: str | None
    status: str  # pain.002: the transaction status (ACCP, RJCT, ...); camt: BOOK, PDNG, ...
    returned: bool  # camt: return information present
    debit: bool  # camt: CdtDbtInd DBIT
    reason_code: str | None
    reason: str | None
    reference: str | None  # the bank's own reference (AcctSvcrRef, StsId)


@dataclass(frozen=True)
class Effect:
    """What one entry does: `outcome`, and for a matched one the order's next status."""

    outcome: Outcome
    next_status: str | None = None
    note: str | None = None  # why an entry is unmatched


def statement_effect(entry: BankEntry, order: Order | None) -> Effect:
    """A camt entry against the order its EndToEndId names (None: no such order)."""
    if entry.end_to_end_id is None:
        return Effect("unmatched", note="no EndToEndId")
    if order is None:
        return Effect("unmatched", note="no payment order has this EndToEndId")
    if entry.status != "BOOK":
        return Effect("unmatched", note=f"entry status {entry.status}, not booked")
    if entry.currency != "CNY" or entry.amount_fen != order.amount_fen:
        return Effect("unmatched", note=f"amount differs from the order's ({entry.currency} {entry.amount_fen} fen)")
    if entry.returned:
        if order.status != SENT:
            return Effect("unmatched", note=f"a return for an order that is {order.status}")
        return Effect("returned", AWAITING_PAYEE)
    if not entry.debit:
        return Effect("unmatched", note="a credit entry that is not a return")
    if order.status != SENT:
        return Effect("unmatched", note=f"a debit for an order that is {order.status}")
    return Effect("settled", SETTLED)


def status_report_effect(entry: BankEntry, order: Order | None) -> Effect:
    """A pain.002 transaction status against its order: RJCT fails a sent order; any other
    status is recorded and changes nothing."""
    if entry.end_to_end_id is None or order is None:
        return Effect("unmatched", note="no payment order has this EndToEndId")
    if entry.status != "RJCT":
        return Effect("accepted")
    if order.status != SENT:
        return Effect("unmatched", note=f"a rejection for an order that is {order.status}")
    return Effect("failed", FAILED)
