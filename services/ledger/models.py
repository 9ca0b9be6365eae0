"""The ledger's tables, declared once, as its migrations build them (tests/integration/test_ledger_models.py
holds the two together). The outbox, inbox, partners and re-drives come with the registry.

What a table cannot say lives in the migrations only: the functions and triggers that keep the
journal, its head, the revocations (0002), the reviews (0006) and verify's checkpoints (0007)
append-only. The repository writes these tables with text SQL and COPY, its hot paths' fastest
form; the classes are the one declaration of their shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlmodel import Column, Field, SQLModel

from shared.messaging.records import service_registry

registry = service_registry()


class LedgerTable(SQLModel, registry=registry):
    pass


def _created_at() -> Any:
    return Field(sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))


class PoolRecord(LedgerTable, table=True):
    """One pool instance per journal account name (services.ledger.journal.domain.pool_account), which
    is unique and parseable; the other columns repeat its parts for filtering."""

    __tablename__ = "pools"
    __table_args__ = (
        # The last line of defence: no code path can commit a pool over its cap or below zero.
        sa.CheckConstraint("committed_fen <= cap_fen", name="pools_committed_within_cap"),
        sa.CheckConstraint("committed_fen >= 0", name="pools_committed_not_negative"),
        sa.CheckConstraint("cap_fen >= 0", name="pools_cap_not_negative"),
        sa.CheckConstraint("year IS NOT NULL OR subject IS NOT NULL", name="pools_year_or_subject"),
        sa.Index("pools_beneficiary_year", "beneficiary", "year"),
        # One pool per subject however it was spelt (0004: a clash found then keeps no key).
        sa.Index("pools_one_per_subject_key", "pool", "beneficiary", "year", "subject_key", unique=True,
                 postgresql_nulls_not_distinct=True, postgresql_where=sa.text("subject_key IS NOT NULL")),
    )

    account: str = Field(sa_column=Column(sa.Text, primary_key=True))
    pool: str = Field(sa_column=Column(sa.Text, nullable=False))
    scope: str = Field(sa_column=Column(sa.Text, nullable=False))
    beneficiary: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int | None = Field(default=None, sa_column=Column(sa.Integer))
    subject: str | None = Field(default=None, sa_column=Column(sa.Text))
    cap_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    committed_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False, server_default="0"))
    citation: str = Field(sa_column=Column(sa.Text, nullable=False, server_default=""))
    created_at: datetime = _created_at()
    # services.ledger.domain.ledger_subject_key(subject), for pools with a subject (not call budgets)
    subject_key: str | None = Field(default=None, sa_column=Column(sa.Text))
    # Whether the journal has the cap (a cap_open entry, written by the first decision that uses the pool; 0007)
    cap_journaled: bool = Field(sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false()))


class DecisionRecord(LedgerTable, table=True):
    """One decision per application, whatever event id carried its assessment."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.CheckConstraint("0 <= awarded_fen AND awarded_fen <= entitlement_fen", name="decisions_awarded_range"),
        sa.Index("decisions_beneficiary_year", "beneficiary", "year"),
        sa.Index("decisions_chain", "overlap_applicant", "overlap_key", "overlap_milestone", "seq",
                 postgresql_where=sa.text("overlap_key IS NOT NULL")),
    )

    application_id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), nullable=False, unique=True))
    assessed_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False))
    decided_event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    beneficiary: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))
    entitlement_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    awarded_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    correlation_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    recorded_for: str = Field(sa_column=Column(sa.Text, nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # the award.decided data, as published
    created_at: datetime = _created_at()
    # The overlap chain an eligible decision belongs to and the pool rows it was decided against:
    # what re-deciding the chain after a revocation needs (null before 0004 unless granted).
    overlap_applicant: str | None = Field(default=None, sa_column=Column(sa.Text))
    overlap_key: str | None = Field(default=None, sa_column=Column(sa.Text))
    overlap_milestone: str | None = Field(default=None, sa_column=Column(sa.Text))
    pool_accounts: list[str] | None = Field(default=None, sa_column=Column(ARRAY(sa.Text)))
    # For a program under review (eligible): {"requested_amount_fen", "rules"} from the receipt (0006).
    review_basis: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    # The call (申报批次) of the receipt, published in award.decided and award.reviewed but kept out of
    # `data` (replay compares it with rows stored before the call was carried) (0009).
    call_id: str | None = Field(default=None, sa_column=Column(sa.Text))


class AwardRecord(LedgerTable, table=True):
    """A granted award (awarded > 0): base or top-up, with its own draws and its journal entry."""

    __tablename__ = "awards"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="awards_amount_positive"),
        sa.CheckConstraint("review IS NULL OR review IN ('pending', 'approved', 'rejected')",
                           name="awards_review_state"),
        sa.CheckConstraint("review IS DISTINCT FROM 'rejected' OR revoked", name="awards_rejected_not_live"),
        # 不重复: one live chain per (applicant, subject key, milestone); top-ups hang off its base.
        sa.Index("awards_one_live_chain", "overlap_applicant", "overlap_key", "overlap_milestone",
                 unique=True, postgresql_where=sa.text("NOT revoked AND top_up_of IS NULL")),
        sa.Index("awards_live_by_overlap", "overlap_applicant", "overlap_key", "overlap_milestone",
                 "journal_seq", postgresql_where=sa.text("NOT revoked")),
        sa.Index("awards_beneficiary_year", "beneficiary", "year"),
        # The review queue and the held part of each pool (0006).
        sa.Index("awards_pending", "journal_seq", postgresql_where=sa.text("review = 'pending' AND NOT revoked")),
    )

    application_id: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("decisions.application_id"), primary_key=True)
    )
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    beneficiary: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    overlap_applicant: str = Field(sa_column=Column(sa.Text, nullable=False))
    overlap_subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    overlap_milestone: str = Field(sa_column=Column(sa.Text, nullable=False))
    amount_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    # [{"account", "amount_fen"}] (rows written before units went last say "amount")
    draws: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    top_up_of: str | None = Field(default=None, sa_column=Column(sa.Text))
    journal_seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False, unique=True))
    revoked: bool = Field(sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false()))
    # ledger_subject_key(overlap_subject); null for a chain the subject-key migration left apart (a clash)
    overlap_key: str | None = Field(default=None, sa_column=Column(sa.Text))
    # pending (held until a reviewer decides), approved, rejected (then also revoked); null: decided at once
    review: str | None = Field(default=None, sa_column=Column(sa.Text))


class JournalEntryRecord(LedgerTable, table=True):
    """The journal: append-only (triggers), double-entry (postings sum to zero), hash-chained."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('award', 'top_up', 'revocation', 'redecision', 'hold', 'approval', "
                           "'release', 'rejection', 'cap_open', 'cap_amend', 'posting', 'payment_sent', "
                           "'payment_settled', 'payment_failed', 'payment_returned', 'payment_cancelled')",
                           name="journal_kind"),
        sa.CheckConstraint("seq >= 1", name="journal_seq_positive"),
        sa.CheckConstraint(
            "jsonb_typeof(postings) = 'array' AND jsonb_array_length(postings) > 0 "
            "AND journal_postings_sum(postings) = 0",
            name="journal_postings_balance",
        ),
        sa.Index("journal_entries_application", "application_id"),
    )

    seq: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(sa.Text, nullable=False))
    application_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    event_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    postings: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))  # [{"account", "amount": fen}]
    prev_hash: str = Field(sa_column=Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    recorded_for: str = Field(sa_column=Column(sa.Text, nullable=False))
    created_at: datetime = _created_at()


class VerifyCheckpointRecord(LedgerTable, table=True):
    """Where a verify that found the ledger intact ended, and the totals it derived per pool account
    ({"pool:…": [cap, committed]}): a later verify may start there (0007). Append-only (triggers)."""

    __tablename__ = "verify_checkpoints"
    __table_args__ = (
        sa.CheckConstraint("seq >= 0", name="verify_checkpoints_seq"),
        sa.CheckConstraint("jsonb_typeof(totals) = 'object'", name="verify_checkpoints_totals"),
        sa.Index("verify_checkpoints_seq", "seq"),
    )

    id: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), primary_key=True))
    seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(sa.String(64), nullable=False))
    totals: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    from_genesis: bool = Field(sa_column=Column(sa.Boolean, nullable=False))  # a full run, or from a checkpoint
    created_at: datetime = _created_at()


class JournalHeadRecord(LedgerTable, table=True):
    """The chain's head: one row, locked FOR UPDATE by every writer, so no two instances fork it."""

    __tablename__ = "journal_head"
    __table_args__ = (sa.CheckConstraint("id = 1", name="journal_head_single_row"),)

    id: int = Field(sa_column=Column(sa.SmallInteger, primary_key=True))
    seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(sa.String(64), nullable=False))


class RevocationRecord(LedgerTable, table=True):
    """Operator actions audit: who revoked what, why, when; one revocation per application."""

    __tablename__ = "revocations"
    __table_args__ = (
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="revocations_reason_length"),
    )

    application_id: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("awards.application_id"), primary_key=True)
    )
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))
    revoked_by: str = Field(sa_column=Column(sa.Text, nullable=False))
    revoked_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    amount_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    journal_seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False, unique=True))
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # the award.revoked data, as published
    # Made since revocations re-decide the rest of the chain (0004); replay repeats each as made.
    redecides: bool = Field(sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false()))


class ReviewRecord(LedgerTable, table=True):
    """One review (核定) per award: who approved or rejected it, how much, why and when (0006)."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.CheckConstraint("decision IN ('approve', 'reject')", name="reviews_decision"),
        sa.CheckConstraint("held_fen > 0 AND 0 <= awarded_fen AND awarded_fen <= held_fen",
                           name="reviews_awarded_within_hold"),
        sa.CheckConstraint("(decision = 'reject') = (awarded_fen = 0)", name="reviews_reject_awards_nothing"),
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="reviews_reason_length"),
    )

    application_id: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("awards.application_id"), primary_key=True)
    )
    decision: str = Field(sa_column=Column(sa.Text, nullable=False))
    held_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    awarded_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))
    reviewed_by: str = Field(sa_column=Column(sa.Text, nullable=False))  # the actor's id
    reviewed_by_name: str | None = Field(default=None, sa_column=Column(sa.Text))
    reviewed_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    journal_seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False, unique=True))  # approval or rejection
    event_id: uuid.UUID = Field(sa_column=Column(UUID(as_uuid=True), nullable=False, unique=True))
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # the award.reviewed data, as published


class SubjectClashRecord(LedgerTable, table=True):
    """Rows that fold to one subject key but were kept apart by the subject-key migration (0004):
    pools (`scope`: pool, beneficiary, year) or live overlap chains (`scope`: applicant,
    milestone); `kept` is the one that has the key, `members` every row with what it holds."""

    __tablename__ = "subject_clashes"
    __table_args__ = (sa.CheckConstraint("kind IN ('pool', 'overlap_chain')", name="subject_clashes_kind"),)

    id: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(), primary_key=True))
    kind: str = Field(sa_column=Column(sa.Text, nullable=False))
    subject_key: str = Field(sa_column=Column(sa.Text, nullable=False))
    scope: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    kept: str = Field(sa_column=Column(sa.Text, nullable=False))
    members: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    found_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))


# ---------------------------------------------------------------------------------------------
# Payments (services.ledger.payments; migration 0008)
# ---------------------------------------------------------------------------------------------


def _at(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(sa.DateTime(timezone=True), nullable=nullable))


class PayeeRecord(LedgerTable, table=True):
    """Where an application is paid, from application.received and payee.updated (the latest wins)."""

    __tablename__ = "payees"

    application_id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    applicant_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    partner_id: str | None = Field(default=None, sa_column=Column(sa.Text))
    account_name: str = Field(sa_column=Column(sa.Text, nullable=False))
    account_number: str = Field(sa_column=Column(sa.Text, nullable=False))
    bank_code: str = Field(sa_column=Column(sa.Text, nullable=False))
    updated_at: datetime = _at()
    event_id: str = Field(sa_column=Column(sa.Text, nullable=False))


class PaymentBatchRecord(LedgerTable, table=True):
    """Ready orders gathered for the bank, with control totals; created, approved by another
    identity, sent (its pain.001 stored as first downloaded)."""

    __tablename__ = "payment_batches"
    __table_args__ = (
        sa.CheckConstraint("status IN ('created', 'approved', 'sent')", name="payment_batches_status"),
        sa.CheckConstraint("count > 0 AND control_sum_fen > 0", name="payment_batches_totals"),
        sa.CheckConstraint("(status = 'sent') = (document IS NOT NULL)", name="payment_batches_sent_document"),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))
    program: str | None = Field(default=None, sa_column=Column(sa.Text))
    year: int | None = Field(default=None, sa_column=Column(sa.Integer))
    count: int = Field(sa_column=Column(sa.Integer, nullable=False))
    control_sum_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    created_by: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _at()
    approved_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    approved_at: datetime | None = _at(nullable=True)
    sent_at: datetime | None = _at(nullable=True)
    document: bytes | None = Field(default=None, sa_column=Column(sa.LargeBinary))


class PaymentOrderRecord(LedgerTable, table=True):
    """One payment order per finalized award (`pay_…`)."""

    __tablename__ = "payment_orders"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="payment_orders_amount_positive"),
        sa.CheckConstraint("status IN ('awaiting_payee', 'ready', 'sent', 'settled', 'failed', 'cancelled')",
                           name="payment_orders_status"),
        sa.CheckConstraint("status NOT IN ('sent', 'settled') OR batch_id IS NOT NULL",
                           name="payment_orders_sent_batched"),
        sa.Index("payment_orders_status", "status", "id"),
        sa.Index("payment_orders_batch", "batch_id"),
    )

    id: str = Field(sa_column=Column(sa.Text, primary_key=True))
    application_id: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("awards.application_id"), nullable=False, unique=True))
    partner_id: str | None = Field(default=None, sa_column=Column(sa.Text))
    applicant_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    program: str = Field(sa_column=Column(sa.Text, nullable=False))
    year: int = Field(sa_column=Column(sa.Integer, nullable=False))
    amount_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))
    batch_id: str | None = Field(default=None, sa_column=Column(sa.Text, sa.ForeignKey("payment_batches.id")))
    reason_code: str | None = Field(default=None, sa_column=Column(sa.Text))
    reason: str | None = Field(default=None, sa_column=Column(sa.Text))
    finalized_event_id: str = Field(sa_column=Column(sa.Text, nullable=False, unique=True))
    updated_at: str = Field(sa_column=Column(sa.Text, nullable=False))  # RFC 3339: the last step's recorded time


class PaymentBatchItemRecord(LedgerTable, table=True):
    """One order in one batch, with the creditor as sent (an order batched again has two)."""

    __tablename__ = "payment_batch_items"
    __table_args__ = (
        sa.CheckConstraint("status IN ('batched', 'sent', 'settled', 'failed', 'returned')",
                           name="payment_batch_items_status"),
        sa.UniqueConstraint("batch_id", "position", name="payment_batch_items_position"),
    )

    batch_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("payment_batches.id"), primary_key=True))
    order_id: str = Field(sa_column=Column(sa.Text, sa.ForeignKey("payment_orders.id"), primary_key=True))
    position: int = Field(sa_column=Column(sa.Integer, nullable=False))
    amount_fen: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    account_name: str | None = Field(default=None, sa_column=Column(sa.Text))
    account_number: str | None = Field(default=None, sa_column=Column(sa.Text))
    bank_code: str | None = Field(default=None, sa_column=Column(sa.Text))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))


class BankDocumentRecord(LedgerTable, table=True):
    """A bank document by content hash, and how far its entries were applied (chunk by chunk)."""

    __tablename__ = "bank_documents"

    sha256: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    kind: str = Field(sa_column=Column(sa.Text, nullable=False))
    msg_id: str = Field(sa_column=Column(sa.Text, nullable=False))
    entries: int = Field(sa_column=Column(sa.Integer, nullable=False))
    applied: int = Field(sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    received_by: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    received_at: datetime = _at()
    completed_at: datetime | None = _at(nullable=True)


class BankEntryRecord(LedgerTable, table=True):
    """One transaction of a bank document and what it did (unmatched ones wait for a person)."""

    __tablename__ = "bank_entries"
    __table_args__ = (
        sa.CheckConstraint("outcome IN ('settled', 'returned', 'failed', 'accepted', 'unmatched', 'duplicate')",
                           name="bank_entries_outcome"),
        sa.Index("bank_entries_unmatched", "recorded_at", "document_sha256", "position",
                 postgresql_where=sa.text("outcome = 'unmatched'")),
    )

    document_sha256: str = Field(
        sa_column=Column(sa.String(64), sa.ForeignKey("bank_documents.sha256"), primary_key=True))
    position: int = Field(sa_column=Column(sa.Integer, primary_key=True))
    path: str = Field(sa_column=Column(sa.Text, nullable=False))
    end_to_end_id: str | None = Field(default=None, sa_column=Column(sa.Text))
    amount_fen: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    status: str = Field(sa_column=Column(sa.Text, nullable=False))
    outcome: str = Field(sa_column=Column(sa.Text, nullable=False))
    order_id: str | None = Field(default=None, sa_column=Column(sa.Text))
    reason_code: str | None = Field(default=None, sa_column=Column(sa.Text))
    note: str | None = Field(default=None, sa_column=Column(sa.Text))
    recorded_at: datetime = _at()
