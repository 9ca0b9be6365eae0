"""What each payment step does: keep payees, order on finalisation, batch, approve, send, and apply
the bank's documents. Each step that moves money is a journal entry and a `payment.*` event whose
id is the entry's event id (the package docs say why)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.handlers import SOURCE
from services.ledger.journal.domain import JournalEntry, JournalHead, Posting, build_entry
from services.ledger.payments import domain as d
from services.ledger.payments.documents import (
    STATEMENTS,
    STATUS_REPORTS,
    DocumentProblem,
    DocumentReader,
    Header,
)
from services.ledger.payments.domain import (
    AWAITING_PAYEE,
    BATCH_APPROVED,
    BATCH_CREATED,
    BATCH_SENT,
    MONEY_LEFT,
    READY,
    SENT,
    BankEntry,
    Batch,
    Order,
    PayeeRecord,
    Payer,
)
from services.ledger.payments.repository import SqlPaymentRepository
from shared.contracts.envelope import Event
from shared.contracts.events import (
    Actor,
    ApplicationReceived,
    AwardFinalized,
    EventData,
    PayeeUpdated,
    PayerAccount,
    PaymentBatchApproved,
    PaymentBatchCreated,
    PaymentBatchSent,
    PaymentFailed,
    PaymentOrdered,
    PaymentReturned,
    PaymentSent,
    PaymentSettled,
    PaymentStep,
    new_typed_event,
    parse_event_data,
)
from shared.kernel.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from shared.kernel.money import format_fen

log = logging.getLogger(__name__)

CHUNK = 500  # bank entries applied per transaction
BankRow = tuple[BankEntry, str, str | None, str | None]  # an entry, its outcome, the order it matched, why not
_STEP_EVENTS: dict[str, type[PaymentStep]] = {
    "ordered": PaymentOrdered, "sent": PaymentSent, "settled": PaymentSettled, "failed": PaymentFailed,
    "returned": PaymentReturned,
}


# (model, keys) of the step data already shown to be complete and written as given (Steps.step).
_CHECKED_SHAPES: set[tuple[type[PaymentStep], tuple[str, ...]]] = set()


@dataclass
class Steps:
    """The journal entries and events of one transaction's payment steps, chained from `head`."""

    head: JournalHead
    entries: list[JournalEntry] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)
    _times: dict[str, datetime] = field(default_factory=dict)

    def step(self, kind: str, step: str, order: Order, postings: Sequence[Posting] | None, at: str,
             event_id: uuid.UUID, *, correlation_id: str | None = None) -> None:
        if postings is not None:
            entry = build_entry(seq=self.head.seq + 1, prev_hash=self.head.hash, kind=kind,
                                application_id=order.application_id, event_id=str(event_id), postings=postings,
                                recorded_for=at)
            self.entries.append(entry)
            self.head = JournalHead(entry.seq, entry.hash)
        # The data as its model's to_data() writes it: the keys set, in declaration order.
        data: dict[str, Any] = {
            "order_id": order.id, "application_id": order.application_id, "partner_id": order.partner_id,
            "applicant_id": order.applicant_id, "amount": format_fen(order.amount_fen), "status": order.status}
        if order.batch_id is not None:
            data["batch_id"] = order.batch_id
        if order.payee is not None:
            data["masked_account"] = order.payee.masked
        if order.reason_code is not None:
            data["reason_code"] = order.reason_code
        if order.reason is not None:
            data["reason"] = order.reason
        data["at"] = at
        model = _STEP_EVENTS[step]
        validated = model.model_validate(data)  # every field's contract, every step
        shape = (model, tuple(data))
        if shape not in _CHECKED_SHAPES:
            # What new_typed_event checks and does, once per shape: the model keeps every value as
            # written (strict, no coercion), so data of this shape is its to_data() for any values.
            missing = validated.unset_fields()
            if missing:
                raise TypeError(f"{model.event_type}: the publisher must set {', '.join(missing)}")
            if validated.to_data() != data:
                raise TypeError(f"{model.event_type}: the data is not written as given")
            _CHECKED_SHAPES.add(shape)
        time = self._times.get(at)
        if time is None:
            time = self._times[at] = datetime.fromisoformat(at)
        # new_typed_event's envelope, built once with its final id (it builds one, then copies it).
        self.events.append((Event(id=event_id, type=model.event_type, source=SOURCE, time=time,
                                  subject=order.application_id, correlation_id=correlation_id or str(event_id),
                                  data=data), order.applicant_id))

    async def flush(self, repo: SqlPaymentRepository) -> None:
        if self.entries:
            await repo.insert_entries(self.entries)
            await repo.write_head(self.head)
        await repo.add_events(self.events)


# ---------------------------------------------------------------------------------------------
# Events consumed: payees, finalisation
# ---------------------------------------------------------------------------------------------


async def keep_payee(session: AsyncSession, event: Event) -> None:
    """`application.received` (with a payee) and `payee.updated`: keep the payee; an order waiting
    for one (or failed) becomes ready (`payment.ordered` again, status ready)."""
    data = parse_event_data(event)
    if isinstance(data, ApplicationReceived):
        if data.payee is None:
            return
        app, applicant, partner, payee, at = (data.application_id, data.application.applicant.id, data.partner_id,
                                              data.payee, event.time)
    elif isinstance(data, PayeeUpdated):
        app, applicant, partner, payee, at = (data.application_id, data.applicant_id, data.partner_id, data.payee,
                                              datetime.fromisoformat(data.updated_at))
    else:
        return
    repo = SqlPaymentRepository(session)
    record = PayeeRecord(payee.account_name, payee.account_number, payee.bank_code)
    if not await repo.upsert_payee(app, applicant, partner, record, at, str(event.id)):
        return
    waiting = await repo.waiting_orders(app)
    if not waiting:
        return
    steps = Steps(await repo.head())  # no journal entry: readiness moves no money
    ready = [replace(o, status=READY, batch_id=None, reason_code=None, reason=None, updated_at=at.isoformat(),
                     payee=record) for o in waiting]
    for order in ready:
        steps.step("", "ordered", order, None, order.updated_at, uuid.uuid5(event.id, f"payment.ordered:{order.id}"),
                   correlation_id=event.correlation_id)
    await repo.set_orders(ready)
    await repo.add_events(steps.events)


async def order_payment(session: AsyncSession, event: Event, *, order_id: str | None = None) -> None:
    """`award.finalized`: post the award for payment (payable → order) and create its order, ready
    when a payee is known. Once per application (a second finalisation changes nothing). `order_id`
    is the id to give it (replay gives the recorded one); a new one by default."""
    data = parse_event_data(event)
    if not isinstance(data, AwardFinalized) or data.application_id is None:
        return
    repo = SqlPaymentRepository(session)
    award = await repo.finalizable_award(data.application_id)
    if award is None or award.review == "pending":
        log.warning("award.finalized for an award that is not live and settled", extra={
            "event_id": str(event.id), "application_id": data.application_id})
        return
    if await repo.order_of_application(data.application_id) is not None:
        return
    head = await repo.lock_head()
    at = data.finalized_at or event.time.isoformat()
    event_id = uuid.uuid5(event.id, "payment.ordered")
    order = Order(order_id or d.new_order_id(), award.application_id, award.partner_id or data.partner_id, award.beneficiary,
                  award.program, award.year, award.amount_fen, READY if await repo.has_payee(award.application_id)
                  else AWAITING_PAYEE, None, None, None, at, None)
    current = await repo.order_of_application(award.application_id)  # under the head lock: a twin finalisation?
    if current is not None:
        return
    await repo.insert_order(order, str(event.id))
    order = (await repo.order_of_application(order.application_id)) or order
    steps = Steps(head)
    steps.step(d.POSTING, "ordered", order, d.posting_postings(order.id, award.beneficiary, order.amount_fen), at,
               event_id, correlation_id=event.correlation_id)
    await steps.flush(repo)


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


def _batch_event(model: type[EventData], batch: Batch, at: datetime, **fields: Any) -> tuple[Event, str]:
    """A batch step's event (the contracts say why there is one), its id derived from the batch's,
    so a replay writes the same event."""
    data = model.model_validate({"batch_id": batch.id, "count": batch.count,
                                 "control_sum": format_fen(batch.control_sum_fen), "at": at.isoformat(), **fields})
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"grantline:{model.event_type}:{batch.id}")
    return new_typed_event(data, source=SOURCE, subject=batch.id, event_id=event_id, time=at), batch.id


async def create_batch(repo: SqlPaymentRepository, *, program: str | None, year: int | None, limit: int,
                       by: dict[str, str], now: datetime, batch_id: str | None = None) -> Batch:
    """`batch_id` is the id to give it (replay gives the recorded one); a new one by default."""
    items = await repo.take_ready(program=program, year=year, limit=limit)
    if not items:
        raise Conflict("no ready payment order matches (each is ready, has a payee and is in no other batch)")
    batch = Batch(batch_id or d.new_batch_id(), BATCH_CREATED, program, year, len(items),
                  sum(i.amount_fen for i in items), by, None, now.isoformat(), None, None)
    await repo.insert_batch(batch, items, now)
    await repo.add_events([_batch_event(PaymentBatchCreated, batch, now, program=program, year=year,
                                        created_by=Actor.model_validate(by))])
    return batch


async def approve_batch(repo: SqlPaymentRepository, batch_id: str, *, by: dict[str, str], now: datetime) -> Batch:
    batch = await repo.batch(batch_id, lock=True)
    if batch is None:
        raise NotFound(f"no payment batch {batch_id}")
    if batch.status != BATCH_CREATED:
        raise Conflict(f"payment batch {batch_id} is {batch.status}: only a created batch is approved")
    if batch.created_by.get("id") == by["id"]:
        raise Conflict(f"payment batch {batch_id} was created by {by['id']}: another payment officer approves it "
                       "(four eyes)")
    await repo.approve_batch(batch_id, by, now)
    await repo.add_events([_batch_event(PaymentBatchApproved, batch, now, approved_by=Actor.model_validate(by))])
    return replace(batch, status=BATCH_APPROVED, approved_by=by, approved_at=now.isoformat())


async def send_batch(repo: SqlPaymentRepository, batch_id: str, *, payer: Payer, now: datetime) -> bytes:
    """The batch's pain.001: built, stored and sent (orders sent, payable → in transit for each,
    `payment.sent`) on the first download; the stored bytes on every later one."""
    from services.ledger.payments.documents import pain001_document
    batch = await repo.batch(batch_id, lock=True)
    if batch is None:
        raise NotFound(f"no payment batch {batch_id}")
    if batch.status == BATCH_SENT:
        document = await repo.batch_document(batch_id)
        assert document is not None
        return document
    if batch.status != BATCH_APPROVED:
        raise Conflict(f"payment batch {batch_id} is {batch.status}: it is downloaded once approved")
    items = await repo.batch_items(batch_id)
    document = pain001_document(batch_id, items, payer, now)
    orders = await repo.orders_by_ids([i.order_id for i in items])
    steps = Steps(await repo.lock_head())
    at = now.isoformat()
    sent: list[Order] = []
    by_id = {i.order_id: i for i in items}
    for item in items:
        order = orders[item.order_id]
        if order.status != READY or order.batch_id != batch_id:
            raise Conflict(f"payment order {order.id} is {order.status}: batch {batch_id} cannot be sent")
        payee = PayeeRecord(by_id[order.id].account_name, by_id[order.id].account_number, by_id[order.id].bank_code)
        order = replace(order, status=SENT, updated_at=at, payee=payee)
        steps.step(d.PAYMENT_SENT, "sent", order, d.sent_postings(order.id, order.amount_fen), at,
                   uuid.uuid5(uuid.NAMESPACE_URL, f"grantline:payment.sent:{batch_id}:{order.id}"))
        sent.append(order)
    await repo.set_orders(sent)
    await repo.mark_sent(batch_id, document, now)
    payer_account = PayerAccount(name=payer.name, account=payer.account, bank_code=payer.bank_code)
    await repo.add_events([_batch_event(PaymentBatchSent, batch, now, payer=payer_account,
                                        document_sha256=hashlib.sha256(document).hexdigest())])
    await steps.flush(repo)
    return document


# ---------------------------------------------------------------------------------------------
# The bank's documents
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    sha256: str
    kind: str
    msg_id: str
    entries: int
    already_imported: bool
    outcomes: dict[str, int]


def check_document(body: bytes, accepted: Sequence[str]) -> tuple[Header, int, set[str]]:
    """The checked read of a whole document: its header, its number of entries and the EndToEndIds
    it names (DocumentProblem when anything is wrong)."""
    reader = DocumentReader(body, accepted)
    ids: set[str] = set()
    count = 0
    for entry in reader.entries():
        count += 1
        if entry.end_to_end_id is not None:
            ids.add(entry.end_to_end_id)
    assert reader.header is not None
    return reader.header, count, ids


def _unprocessable(problem: DocumentProblem) -> ValidationFailed:
    return ValidationFailed(f"{problem.path}: {problem.detail}", errors=[FieldProblem(problem.path, problem.detail)])


async def import_bank_document(maker: async_sessionmaker[AsyncSession], body: bytes, *, statements: bool,
                               by: dict[str, str], now: datetime | None = None, chunk: int = CHUNK) -> ImportResult:
    """Validate the whole document first (nothing applied on a 422 or a 409), then apply its
    entries CHUNK at a time, one transaction each. The same document again (by content hash)
    changes nothing; one whose import stopped part way goes on where it stopped."""
    accepted = STATEMENTS if statements else STATUS_REPORTS
    sha256 = hashlib.sha256(body).hexdigest()
    async with maker() as session:
        known = await SqlPaymentRepository(session).bank_document(sha256)
    if known is not None and known.completed_at is not None:
        async with maker() as session:
            outcomes = await SqlPaymentRepository(session).outcome_counts(sha256)
        return ImportResult(sha256, known.kind, known.msg_id, known.entries, True, outcomes)
    try:
        # Seconds of CPU for a large statement: off the event loop, so the service goes on answering.
        header, count, ids = await asyncio.to_thread(check_document, body, accepted)
    except DocumentProblem as problem:
        raise _unprocessable(problem) from None
    async with maker() as session, session.begin():
        repo = SqlPaymentRepository(session)
        if header.original_msg_id is not None:
            batch = await repo.batch(header.original_msg_id)
            if batch is not None and batch.status != BATCH_SENT:
                raise Conflict(f"payment batch {batch.id} is {batch.status}: the bank answers a batch once it is sent")
        unsent = await repo.unsent_batches_of(sorted(ids))
        if unsent:
            batch_id, status = unsent[0]
            raise Conflict(f"payment batch {batch_id} is {status}: the bank answers a batch once it is sent")
        await repo.insert_bank_document(sha256, header.kind.name, header.msg_id, count, by, now or datetime.now(UTC))
    del ids
    async with maker() as session:
        doc = await SqlPaymentRepository(session).bank_document(sha256)
    applied = doc.applied if doc is not None else 0
    pending: list[BankEntry] = []
    seen = 0
    for entry in DocumentReader(body, accepted, checked=False).entries():  # the same bytes, checked above
        seen += 1
        if seen <= applied:
            continue
        pending.append(entry)
        if len(pending) >= chunk:
            await _apply_chunk(maker, sha256, pending, seen, statements=statements, complete=seen == count)
            pending = []
    if pending or seen == applied:
        await _apply_chunk(maker, sha256, pending, seen, statements=statements, complete=True)
    async with maker() as session:
        outcomes = await SqlPaymentRepository(session).outcome_counts(sha256)
    return ImportResult(sha256, header.kind.name, header.msg_id, count, False, outcomes)


async def _apply_chunk(maker: async_sessionmaker[AsyncSession], sha256: str, entries: Sequence[BankEntry],
                       applied: int, *, statements: bool, complete: bool) -> None:
    now = datetime.now(UTC)
    at = now.isoformat()
    async with maker() as session, session.begin():
        repo = SqlPaymentRepository(session)
        doc = await repo.bank_document(sha256, lock=True)
        if doc is None or doc.completed_at is not None or (doc.applied >= applied and entries):
            return  # another import of the same document applied this chunk meanwhile
        overlap = doc.applied - (applied - len(entries))
        if overlap > 0:  # applied in part by another import meanwhile: the rest only
            entries = entries[overlap:]
        rows = await apply_bank_entries(
            repo, entries, at, statements=statements,
            event_id=lambda entry: uuid.uuid5(uuid.NAMESPACE_URL, f"grantline:bank:{sha256}:{entry.index}"))
        await repo.record_entries(sha256, rows, applied, now, complete=complete)


async def apply_bank_entries(repo: SqlPaymentRepository, entries: Sequence[BankEntry], at: str, *, statements: bool,
                             event_id: Callable[[BankEntry], uuid.UUID]) -> list[BankRow]:
    """What a chunk of bank entries does, in the caller's transaction: each matched entry's step
    (order, batch item, journal entry recorded for `at`, `payment.*` event with id `event_id(entry)`),
    and per entry (entry, outcome, order id, note). The import records the rows; grantline-replay
    repeats through here the steps the live ledger recorded."""
    orders = await repo.orders_by_ids([e.end_to_end_id for e in entries if e.end_to_end_id])
    steps = Steps(await repo.lock_head())
    rows: list[BankRow] = []
    items: list[tuple[str, str, str]] = []
    changed: dict[str, Order] = {}
    for entry in entries:
        order = orders.get(entry.end_to_end_id or "")
        effect = (d.statement_effect if statements else d.status_report_effect)(entry, order)
        rows.append((entry, effect.outcome, order.id if order else None, effect.note))
        if order is None or effect.next_status is None:
            continue
        step_id = event_id(entry)
        batch_id = order.batch_id
        assert batch_id is not None
        if effect.outcome == "settled":
            order = replace(order, status=d.SETTLED, updated_at=at)
            steps.step(d.PAYMENT_SETTLED, "settled", order,
                       d.settled_postings(order.id, order.applicant_id, order.amount_fen), at, step_id)
            items.append((batch_id, order.id, d.ITEM_SETTLED))
        else:
            failed = effect.outcome == "failed"
            order = replace(order, status=d.FAILED if failed else AWAITING_PAYEE, batch_id=None,
                            reason_code=entry.reason_code, reason=entry.reason, updated_at=at)
            steps.step(d.PAYMENT_FAILED if failed else d.PAYMENT_RETURNED, "failed" if failed else "returned",
                       replace(order, batch_id=batch_id), d.back_postings(order.id, order.amount_fen), at,
                       step_id)
            items.append((batch_id, order.id, d.ITEM_FAILED if failed else d.ITEM_RETURNED))
        orders[order.id] = order
        changed[order.id] = order
    await repo.set_orders(list(changed.values()))
    await repo.set_items(items)
    await steps.flush(repo)
    return rows


# ---------------------------------------------------------------------------------------------
# Revocation guard
# ---------------------------------------------------------------------------------------------


async def guard_revocation(repo: SqlPaymentRepository, application_id: str) -> Order | None:
    """409 when the award's payment is sent or settled (money has left); else its order, locked
    (None without one)."""
    order = await repo.order_of_application(application_id, lock=True)
    if order is not None and order.status in MONEY_LEFT:
        raise Conflict(f"the payment of application {application_id} is {order.status} (order {order.id}): money "
                       "has left the treasury, so the award cannot be revoked; recovering it is a separate act")
    return order


async def cancel_order(repo: SqlPaymentRepository, order: Order, *, cause: dict[str, Any], now: datetime) -> None:
    """An order not yet sent, for an award now revoked: cancelled (order → payable again, which the
    revocation took back)."""
    if order.status == d.CANCELLED:
        return
    head = await repo.lock_head()
    at = now.isoformat()
    steps = Steps(head)
    cancelled = replace(order, status=d.CANCELLED, batch_id=None, updated_at=at)
    entry = build_entry(seq=head.seq + 1, prev_hash=head.hash, kind=d.PAYMENT_CANCELLED,
                        application_id=order.application_id, event_id=str(cause.get("event_id") or order.id),
                        postings=d.cancel_postings(order.id, order.applicant_id, order.amount_fen), recorded_for=at)
    steps.entries.append(entry)
    steps.head = JournalHead(entry.seq, entry.hash)
    await repo.set_orders([cancelled])
    await steps.flush(repo)
