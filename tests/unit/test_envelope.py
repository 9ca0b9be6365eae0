"""The one event envelope: CloudEvents names, round trip, causation, poison detection."""

from __future__ import annotations

import uuid

import orjson
import pytest

from shared.contracts.envelope import Event, PoisonEvent, new_event, parse_event


def test_envelope_has_the_contract_fields_and_round_trips() -> None:
    event = new_event("application.received", source="grantline.intake", subject="app_1", data={"a": "1.00"})
    wire = orjson.loads(event.to_bytes())
    assert set(wire) == {
        "id",
        "type",
        "source",
        "time",
        "subject",
        "data_version",
        "correlation_id",
        "causation_id",
        "data",
    }
    assert uuid.UUID(wire["id"]) == event.id
    assert wire["time"].endswith("Z") or "+00:00" in wire["time"]
    assert parse_event(event.to_bytes()) == event


def test_a_caused_event_inherits_correlation_and_names_its_cause() -> None:
    first = new_event("application.received", source="s", subject="app_1", data={}, correlation_id="corr-1")
    second = new_event("application.assessed", source="s", subject="app_1", data={}, causation=first)
    assert second.correlation_id == "corr-1"
    assert second.causation_id == str(first.id)
    assert second.id != first.id


def test_a_new_correlation_defaults_to_the_event_id() -> None:
    event = new_event("x.y", source="s", subject="s", data={})
    assert event.correlation_id == str(event.id)


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"not json", b"[]", b'{"id": "x"}', orjson.dumps({"id": "2180419a-38eb-4023-9498-0fb775f46f86", "type": "t"})],
)
def test_what_is_not_an_envelope_is_poison(raw: bytes | None) -> None:
    with pytest.raises(PoisonEvent):
        parse_event(raw)


def test_unknown_extra_attributes_are_tolerated_for_forward_compatibility() -> None:
    event = new_event("x.y", source="s", subject="s", data={"k": 1})
    wire = {**event.to_wire(), "specversion": "1.0"}
    assert parse_event(orjson.dumps(wire)).id == event.id
    assert isinstance(parse_event(orjson.dumps(wire)), Event)


def test_wrapped_connection_failures_are_transient_and_bad_data_is_not() -> None:
    from sqlalchemy.exc import DBAPIError, IntegrityError

    from shared.db.transient import is_transient

    class CannotConnectNow(Exception):
        sqlstate = "57P03"

    class UniqueViolation(Exception):
        sqlstate = "23505"

    starting = DBAPIError("SELECT 1", {}, CannotConnectNow("the database system is starting up"))
    assert is_transient(starting)
    assert is_transient(RuntimeError("wrapper")) is False
    duplicate = IntegrityError("INSERT", {}, UniqueViolation("duplicate key"))
    assert is_transient(duplicate) is False
    try:
        try:
            raise ConnectionResetError("peer went away")
        except ConnectionResetError as inner:
            raise ValueError("while decoding") from inner
    except ValueError as outer:
        assert is_transient(outer)
