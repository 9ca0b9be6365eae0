"""A payment step's event, built straight from the order (Steps.step, the per-entry fast path of
the import and the send), is byte for byte the event new_typed_event builds from the validated
model, for every step and every shape of data (with and without batch, payee, reason, partner,
correlation id); data its model refuses is still refused."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.ledger.handlers import SOURCE
from services.ledger.journal.domain import GENESIS_HASH, JournalHead
from services.ledger.payments import domain as d
from services.ledger.payments.handlers import _STEP_EVENTS, Steps
from shared.contracts.events import new_typed_event
from shared.kernel.money import format_fen

AT = datetime(2026, 11, 30, 9, 15, 7, 123456, tzinfo=UTC).isoformat()
ORDER = d.Order("pay_0123456789abcdef0123", "app_1", "ptn_1", "91310115MA1H7G0L0C", "GT-EQUITY", 2024, 1_000_000_00,
                d.SETTLED, "bat_1", None, None, AT, d.PayeeRecord("上海某某", "31050161393600000123", "105290061012"))
SHAPES = [
    ORDER,
    replace(ORDER, batch_id=None, payee=None, partner_id=None),
    replace(ORDER, status=d.AWAITING_PAYEE, reason_code="AC04", reason="account closed; 账户已销户 \"x\" <y>"),
    replace(ORDER, status=d.FAILED, reason_code="AC01", reason=None, amount_fen=1),
]


def _reference(step: str, order: d.Order, event_id: uuid.UUID, correlation_id: str | None) -> bytes:
    optional = {"batch_id": order.batch_id, "masked_account": order.payee.masked if order.payee else None,
                "reason_code": order.reason_code, "reason": order.reason}
    data = _STEP_EVENTS[step].model_validate({
        "order_id": order.id, "application_id": order.application_id, "partner_id": order.partner_id,
        "applicant_id": order.applicant_id, "amount": format_fen(order.amount_fen), "status": order.status,
        **{k: v for k, v in optional.items() if v is not None}, "at": AT})
    return new_typed_event(data, source=SOURCE, subject=order.application_id, event_id=event_id,
                           correlation_id=correlation_id, time=datetime.fromisoformat(AT)).to_bytes()


@pytest.mark.parametrize("step", sorted(_STEP_EVENTS))
@pytest.mark.parametrize("correlation_id", [None, "corr-1"])
def test_a_steps_event_is_new_typed_events_bytes(step: str, correlation_id: str | None) -> None:
    steps = Steps(JournalHead(0, GENESIS_HASH))
    for n, order in enumerate(SHAPES):
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"test:{step}:{n}")
        steps.step("", step, order, None, AT, event_id, correlation_id=correlation_id)
        event, key = steps.events[-1]
        assert event.to_bytes() == _reference(step, order, event_id, correlation_id), (step, n)
        assert key == order.applicant_id


def test_data_its_model_refuses_is_refused_on_every_step() -> None:
    steps = Steps(JournalHead(0, GENESIS_HASH))
    steps.step("", "settled", ORDER, None, AT, uuid.uuid4())  # the shape is known now
    with pytest.raises(ValidationError):
        steps.step("", "settled", replace(ORDER, id=""), None, AT, uuid.uuid4())
    with pytest.raises(ValidationError):
        steps.step("", "settled", ORDER, None, "yesterday", uuid.uuid4())
