"""Every SQL statement of the payments. The journal head, its entries and the outbox are the
ledger's own (SqlLedgerRepository, which this extends); the lock order is the ledger's too: order
rows (by id) before the journal head."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.ledger.payments.domain import (
    AWAITING_PAYEE,
    READY,
    BankEntry,
    Batch,
    BatchItem,
    Order,
    PayeeRecord,
)
from services.ledger.repository import SqlLedgerRepository, json_text

_ORDER_COLUMNS = (
    "o.id, o.application_id, o.partner_id, o.applicant_id, o.program, o.year, o.amount_fen, o.status, o.batch_id, "
    "o.reason_code, o.reason, o.updated_at, p.account_name, p.account_number, p.bank_code"
)


def _order(r: Any) -> Order:
    # By position (_ORDER_COLUMNS is Order's fields in order, then the payee's): a chunk of the
    # bank's entries reads hundreds of orders, and a row's attributes by name cost more than the rest.
    (order_id, application_id, partner_id, applicant_id, program, year, amount_fen, status, batch_id, reason_code,
     reason, updated_at, account_name, account_number, bank_code) = r
    payee = None if account_number is None else PayeeRecord(account_name, account_number, bank_code)
    return Order(order_id, application_id, partner_id, applicant_id, program, year, amount_fen, status, batch_id,
                 reason_code, reason, updated_at, payee)


def _batch(r: Any) -> Batch:
    return Batch(r.id, r.status, r.program, r.year, r.count, r.control_sum_fen, r.created_by, r.approved_by,
                 r.created_at.isoformat(), r.approved_at.isoformat() if r.approved_at else None,
                 r.sent_at.isoformat() if r.sent_at else None)


class SqlPaymentRepository(SqlLedgerRepository):
    # -----------------------------------------------------------------------------------------
    # Payees
    # -----------------------------------------------------------------------------------------

    async def upsert_payee(self, application_id: str, applicant_id: str, partner_id: str | None, payee: PayeeRecord,
                           updated_at: datetime, event_id: str) -> bool:
        """The application's payee, unless a later one is already kept; whether it was written."""
        written = await self.session.scalar(
            text("INSERT INTO payees AS p (application_id, applicant_id, partner_id, account_name, account_number, "
                 "bank_code, updated_at, event_id) VALUES (:a, :ap, :pt, :n, :no, :b, :u, :e) "
                 "ON CONFLICT (application_id) DO UPDATE SET account_name = excluded.account_name, "
                 "account_number = excluded.account_number, bank_code = excluded.bank_code, "
                 "updated_at = excluded.updated_at, event_id = excluded.event_id "
                 "WHERE excluded.updated_at >= p.updated_at RETURNING true"),
            {"a": application_id, "ap": applicant_id, "pt": partner_id, "n": payee.account_name,
             "no": payee.account_number, "b": payee.bank_code, "u": updated_at, "e": event_id})
        return bool(written)

    async def has_payee(self, application_id: str) -> bool:
        return bool(await self.session.scalar(
            text("SELECT EXISTS (SELECT 1 FROM payees WHERE application_id = :a)"), {"a": application_id}))

    # -----------------------------------------------------------------------------------------
    # Orders
    # -----------------------------------------------------------------------------------------

    async def finalizable_award(self, application_id: str) -> Any:
        """The application's live award with its decision's partner, or None."""
        return (await self.session.execute(
            text("SELECT a.application_id, a.program, a.beneficiary, a.year, a.amount_fen, a.review, "
                 "d.data->>'partner_id' AS partner_id FROM awards a JOIN decisions d USING (application_id) "
                 "WHERE a.application_id = :a AND NOT a.revoked"), {"a": application_id})).one_or_none()

    async def order_of_application(self, application_id: str, *, lock: bool = False) -> Order | None:
        row = (await self.session.execute(
            text(f"SELECT {_ORDER_COLUMNS} FROM payment_orders o LEFT JOIN payees p USING (application_id) "
                 f"WHERE o.application_id = :a" + (" FOR UPDATE OF o" if lock else "")),
            {"a": application_id})).one_or_none()
        return None if row is None else _order(row)

    async def insert_order(self, order: Order, finalized_event_id: str) -> None:
        await self.session.execute(
            text("INSERT INTO payment_orders (id, application_id, partner_id, applicant_id, program, year, amount_fen, "
                 "status, finalized_event_id, updated_at) VALUES (:id, :a, :pt, :ap, :pg, :y, :amt, :s, :f, :u)"),
            {"id": order.id, "a": order.application_id, "pt": order.partner_id, "ap": order.applicant_id,
             "pg": order.program, "y": order.year, "amt": order.amount_fen, "s": order.status,
             "f": finalized_event_id, "u": order.updated_at})

    async def waiting_orders(self, application_id: str) -> list[Order]:
        """The application's orders waiting for a payee (awaiting one, or failed), locked."""
        rows = await self.session.execute(
            text(f"SELECT {_ORDER_COLUMNS} FROM payment_orders o LEFT JOIN payees p USING (application_id) "
                 "WHERE o.application_id = :a AND o.status IN ('awaiting_payee', 'failed') FOR UPDATE OF o"),
            {"a": application_id})
        return [_order(r) for r in rows]

    async def orders_by_ids(self, ids: Sequence[str]) -> dict[str, Order]:
        """These orders, locked, in id order (the lock order)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            text(f"SELECT {_ORDER_COLUMNS} FROM payment_orders o LEFT JOIN payees p USING (application_id) "
                 "WHERE o.id = ANY(CAST(:ids AS text[])) ORDER BY o.id FOR UPDATE OF o"), {"ids": sorted(set(ids))})
        return {r.id: _order(r) for r in rows}

    async def set_orders(self, orders: Sequence[Order]) -> None:
        """Write back each order's status, batch, reason and time."""
        if not orders:
            return
        await self.session.execute(
            text("UPDATE payment_orders o SET status = u.s, batch_id = u.b, reason_code = u.rc, reason = u.r, "
                 "updated_at = u.t FROM unnest(CAST(:id AS text[]), CAST(:s AS text[]), CAST(:b AS text[]), "
                 "CAST(:rc AS text[]), CAST(:r AS text[]), CAST(:t AS text[])) AS u(id, s, b, rc, r, t) "
                 "WHERE o.id = u.id"),
            {"id": [o.id for o in orders], "s": [o.status for o in orders], "b": [o.batch_id for o in orders],
             "rc": [o.reason_code for o in orders], "r": [o.reason for o in orders],
             "t": [o.updated_at for o in orders]})

    async def orders_page(self, *, status: str | None, batch_id: str | None, after: str | None,
                          limit: int) -> list[Order]:
        where, params = order_filter(status=status, batch_id=batch_id, after=after, limit=limit)
        rows = await self.session.execute(
            text(f"SELECT {_ORDER_COLUMNS} FROM payment_orders o LEFT JOIN payees p USING (application_id) "
                 f"WHERE {where} ORDER BY o.id LIMIT :n"), params)
        return [_order(r) for r in rows]

    # -----------------------------------------------------------------------------------------
    # Batches
    # -----------------------------------------------------------------------------------------

    async def take_ready(self, *, program: str | None, year: int | None, limit: int) -> list[BatchItem]:
        """Ready orders in no batch that match, locked (others' locks skipped), with their payees."""
        where = ["o.status = :ready", "o.batch_id IS NULL"]
        params: dict[str, Any] = {"ready": READY, "n": limit}
        if program is not None:
            where.append("o.program = :program")
            params["program"] = program
        if year is not None:
            where.append("o.year = :year")
            params["year"] = year
        rows = await self.session.execute(
            text("SELECT o.id, o.application_id, o.applicant_id, o.amount_fen, p.account_name, p.account_number, "
                 f"p.bank_code FROM payment_orders o JOIN payees p USING (application_id) WHERE {' AND '.join(where)} "
                 "ORDER BY o.id LIMIT :n FOR UPDATE OF o SKIP LOCKED"), params)
        return [BatchItem(r.id, r.application_id, r.applicant_id, r.amount_fen, r.account_name, r.account_number,
                          r.bank_code) for r in rows]

    async def insert_batch(self, batch: Batch, items: Sequence[BatchItem], created_at: datetime) -> None:
        await self.session.execute(
            text("INSERT INTO payment_batches (id, status, program, year, count, control_sum_fen, created_by, "
                 "created_at) VALUES (:id, :s, :p, :y, :c, :sum, CAST(:by AS jsonb), :at)"),
            {"id": batch.id, "s": batch.status, "p": batch.program, "y": batch.year, "c": batch.count,
             "sum": batch.control_sum_fen, "by": json_text(batch.created_by), "at": created_at})
        await self.session.execute(
            text("INSERT INTO payment_batch_items (batch_id, order_id, position, amount_fen, account_name, "
                 "account_number, bank_code, status) SELECT :b, o, pos, amt, n, no, bc, 'batched' FROM "
                 "unnest(CAST(:o AS text[]), CAST(:amt AS bigint[]), CAST(:n AS text[]), CAST(:no AS text[]), "
                 "CAST(:bc AS text[])) WITH ORDINALITY AS u(o, amt, n, no, bc, pos)"),
            {"b": batch.id, "o": [i.order_id for i in items], "amt": [i.amount_fen for i in items],
             "n": [i.account_name for i in items], "no": [i.account_number for i in items],
             "bc": [i.bank_code for i in items]})
        await self.session.execute(
            text("UPDATE payment_orders SET batch_id = :b WHERE id = ANY(CAST(:o AS text[]))"),
            {"b": batch.id, "o": [i.order_id for i in items]})

    async def batch(self, batch_id: str, *, lock: bool = False) -> Batch | None:
        row = (await self.session.execute(
            text("SELECT id, status, program, year, count, control_sum_fen, created_by, approved_by, created_at, "
                 "approved_at, sent_at FROM payment_batches WHERE id = :id" + (" FOR UPDATE" if lock else "")),
            {"id": batch_id})).one_or_none()
        return None if row is None else _batch(row)

    async def approve_batch(self, batch_id: str, by: dict[str, str], at: datetime) -> None:
        await self.session.execute(
            text("UPDATE payment_batches SET status = 'approved', approved_by = CAST(:by AS jsonb), approved_at = :at "
                 "WHERE id = :id"), {"id": batch_id, "by": json_text(by), "at": at})

    async def batch_document(self, batch_id: str) -> bytes | None:
        document: bytes | None = await self.session.scalar(
            text("SELECT document FROM payment_batches WHERE id = :id"), {"id": batch_id})
        return document

    async def batch_items(self, batch_id: str) -> list[BatchItem]:
        rows = await self.session.execute(
            text("SELECT i.order_id, o.application_id, o.applicant_id, i.amount_fen, i.account_name, "
                 "i.account_number, i.bank_code FROM payment_batch_items i JOIN payment_orders o ON o.id = i.order_id "
                 "WHERE i.batch_id = :b ORDER BY i.position"), {"b": batch_id})
        return [BatchItem(r.order_id, r.application_id, r.applicant_id, r.amount_fen, r.account_name,
                          r.account_number, r.bank_code) for r in rows]

    async def mark_sent(self, batch_id: str, document: bytes, at: datetime) -> None:
        await self.session.execute(
            text("UPDATE payment_batches SET status = 'sent', document = :d, sent_at = :at WHERE id = :id"),
            {"id": batch_id, "d": document, "at": at})
        await self.session.execute(
            text("UPDATE payment_batch_items SET status = 'sent' WHERE batch_id = :b"), {"b": batch_id})

    async def set_items(self, batch_status: Sequence[tuple[str, str, str]]) -> None:
        """(batch id, order id, status) of batch items."""
        if not batch_status:
            return
        await self.session.execute(
            text("UPDATE payment_batch_items i SET status = u.s FROM unnest(CAST(:b AS text[]), CAST(:o AS text[]), "
                 "CAST(:s AS text[])) AS u(b, o, s) WHERE i.batch_id = u.b AND i.order_id = u.o"),
            {"b": [b for b, _, _ in batch_status], "o": [o for _, o, _ in batch_status],
             "s": [s for _, _, s in batch_status]})

    async def batch_totals(self, batch_id: str) -> dict[str, tuple[int, int]]:
        """Per item status: (count, sum in fen)."""
        rows = await self.session.execute(
            text("SELECT status, count(*) AS n, sum(amount_fen) AS s FROM payment_batch_items WHERE batch_id = :b "
                 "GROUP BY status ORDER BY status"), {"b": batch_id})
        return {r.status: (int(r.n), int(r.s)) for r in rows}

    async def unsent_batches_of(self, order_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(batch id, status) of batches not yet sent that hold any of these orders."""
        if not order_ids:
            return []
        rows = await self.session.execute(
            text("SELECT DISTINCT b.id, b.status FROM payment_orders o JOIN payment_batches b ON b.id = o.batch_id "
                 "WHERE o.id = ANY(CAST(:ids AS text[])) AND b.status <> 'sent' ORDER BY b.id"),
            {"ids": list(order_ids)})
        return [(r.id, r.status) for r in rows]

    # -----------------------------------------------------------------------------------------
    # Bank documents
    # -----------------------------------------------------------------------------------------

    async def bank_document(self, sha256: str, *, lock: bool = False) -> Any:
        return (await self.session.execute(
            text("SELECT sha256, kind, msg_id, entries, applied, completed_at FROM bank_documents WHERE sha256 = :h"
                 + (" FOR UPDATE" if lock else "")), {"h": sha256})).one_or_none()

    async def insert_bank_document(self, sha256: str, kind: str, msg_id: str, entries: int, by: dict[str, str],
                                   at: datetime) -> None:
        await self.session.execute(
            text("INSERT INTO bank_documents (sha256, kind, msg_id, entries, received_by, received_at) VALUES "
                 "(:h, :k, :m, :n, CAST(:by AS jsonb), :at) ON CONFLICT (sha256) DO NOTHING"),
            {"h": sha256, "k": kind, "m": msg_id, "n": entries, "by": json_text(by), "at": at})

    async def record_entries(self, sha256: str, rows: Sequence[tuple[BankEntry, str, str | None, str | None]],
                             applied: int, at: datetime, *, complete: bool) -> None:
        """The chunk's entries ((entry, outcome, order id, note)) and how far the document is applied."""
        if rows:
            await self.session.execute(
                text("INSERT INTO bank_entries (document_sha256, position, path, end_to_end_id, amount_fen, status, "
                     "outcome, order_id, reason_code, note, recorded_at) SELECT :h, pos, path, e2e, amt, st, oc, o, "
                     "rc, note, :at FROM unnest(CAST(:pos AS int[]), CAST(:path AS text[]), CAST(:e2e AS text[]), "
                     "CAST(:amt AS bigint[]), CAST(:st AS text[]), CAST(:oc AS text[]), CAST(:o AS text[]), "
                     "CAST(:rc AS text[]), CAST(:note AS text[])) AS u(pos, path, e2e, amt, st, oc, o, rc, note)"),
                {"h": sha256, "at": at, "pos": [e.index for e, _, _, _ in rows], "path": [e.path for e, _, _, _ in rows],
                 "e2e": [e.end_to_end_id for e, _, _, _ in rows], "amt": [e.amount_fen for e, _, _, _ in rows],
                 "st": [e.status for e, _, _, _ in rows], "oc": [oc for _, oc, _, _ in rows],
                 "o": [o for _, _, o, _ in rows], "rc": [e.reason_code for e, _, _, _ in rows],
                 "note": [n for _, _, _, n in rows]})
        await self.session.execute(
            text("UPDATE bank_documents SET applied = :n, completed_at = CASE WHEN :done THEN CAST(:at AS timestamptz) "
                 "ELSE NULL END WHERE sha256 = :h"), {"h": sha256, "n": applied, "done": complete, "at": at})

    async def outcome_counts(self, sha256: str) -> dict[str, int]:
        rows = await self.session.execute(
            text("SELECT outcome, count(*) AS n FROM bank_entries WHERE document_sha256 = :h GROUP BY outcome"),
            {"h": sha256})
        return {r.outcome: int(r.n) for r in rows}

    async def unmatched_page(self, *, after: tuple[str, str, int] | None, limit: int) -> list[Any]:
        where = "outcome = 'unmatched'"
        params: dict[str, Any] = {"n": limit}
        if after is not None:
            where += " AND (recorded_at, document_sha256, position) > (CAST(:t AS timestamptz), :h, :p)"
            params.update({"t": after[0], "h": after[1], "p": after[2]})
        return list((await self.session.execute(
            text("SELECT e.document_sha256, e.position, e.path, e.end_to_end_id, e.amount_fen, e.status, e.order_id, "
                 "e.reason_code, e.note, e.recorded_at, d.kind, d.msg_id FROM bank_entries e JOIN bank_documents d "
                 f"ON d.sha256 = e.document_sha256 WHERE {where} ORDER BY recorded_at, document_sha256, position "
                 "LIMIT :n"), params)).all())


__all__ = ["AWAITING_PAYEE", "SqlPaymentRepository"]


def order_filter(*, status: str | None, batch_id: str | None, after: str | None,
                 limit: int) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (over `payment_orders o`) and parameters of /v1/payment-orders' filters, a
    page of `limit` (`:n`) in id order after `after`: the list and its exports page alike."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {"n": limit}
    if status is not None:
        where.append("o.status = :status")
        params["status"] = status
    if batch_id is not None:
        where.append("o.id IN (SELECT order_id FROM payment_batch_items WHERE batch_id = :batch)")
        params["batch"] = batch_id
    if after is not None:
        where.append("o.id > :after")
        params["after"] = after
    return " AND ".join(where), params
