"""The objector's name, organisation and contact travel only in objection.filed: a consumer
that dead-letters that event keeps a copy with them redacted, in the original, the error and
the trace alike (the dead letter is an event too, and operators list it)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson

from services.notify.objections import domain
from services.notify.objections.domain import Objection, Target
from shared.contracts.envelope import parse_event
from shared.contracts.events import ObjectionFiled, parse_data
from shared.messaging.consumer import REDACTED, dead_letter_event, parked_bytes

NOW = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
NAME, CONTACT, ORGANISATION = "王某某", "13900000000", "某某研究所"


def filed_event() -> Any:
    target = Target("ann_1", "app_1", "91310115MA1H7G0L0C", "ptn_1", "corr", uuid.uuid4())
    objection = Objection(name=NAME, contact=CONTACT, statement="<b>不实</b>", organisation=ORGANISATION)
    return domain.filed(target, objection, objection_id="obj_1", now=NOW).event


def test_objection_filed_carries_the_objector_and_names_its_announcement() -> None:
    event = filed_event()
    data = parse_data(event, ObjectionFiled)
    assert (data.name, data.contact, data.organisation, data.statement) == (NAME, CONTACT, ORGANISATION, "<b>不实</b>")
    assert (event.type, event.subject, data.announcement_id, data.objection_id) == (
        "objection.filed", "app_1", "ann_1", "obj_1")


def test_a_dead_lettered_objection_keeps_no_trace_of_the_objector() -> None:
    event = filed_event()
    record = SimpleNamespace(topic="ns.grantline.announcements", partition=1, offset=3, key=b"k",
                             value=event.to_bytes())
    try:
        raise ValueError(f"objection.filed: could not apply {NAME} / {CONTACT}")
    except ValueError as exc:
        error = exc
    dead = dead_letter_event("intake", "intake.projection", record, error, event).data  # type: ignore[arg-type]
    text = orjson.dumps(dead).decode() + base64.b64decode(dead["original_b64"]).decode()
    for secret in (NAME, CONTACT, ORGANISATION):
        assert secret not in text
    kept = parse_event(base64.b64decode(dead["original_b64"]))
    assert kept.id == event.id and kept.data["statement"] == "<b>不实</b>"
    assert (kept.data["name"], kept.data["contact"], kept.data["organisation"]) == (REDACTED,) * 3
    assert parse_data(kept, ObjectionFiled).objection_id == "obj_1"  # still a valid event: a re-drive applies


def test_other_events_are_parked_as_they_came() -> None:
    raw = b'{"not": "an envelope"}'
    assert parked_bytes(raw) == raw
    assert parked_bytes(None) is None
    assert NAME not in parked_bytes(filed_event().to_bytes()).decode()  # type: ignore[union-attr]
