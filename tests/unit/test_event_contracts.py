"""The event data models (shared.contracts.events) against today's wire.

For every event type: the data its publisher builds today, validated into the model and dumped
with `to_data()`, gives the same JSON bytes (same keys, same nulls, same order); the payloads
today's consumers accept (including the partial ones other tests send) still parse; and
malformed data raises.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.eligibility import handlers as eligibility
from services.eligibility.domain import assess_received
from services.ledger.domain import LiveAward, PoolKey, PoolState, as_stored, decide_award, with_call
from services.ledger.handlers import decided_data, parse_item
from services.notify import domain as notify_domain
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import (
    EVENT_DATA,
    AnnouncementPublished,
    ApplicationAssessed,
    ApplicationReceived,
    AwardDecided,
    AwardFinalized,
    AwardReviewed,
    AwardRevoked,
    EventData,
    EventDeadLettered,
    PartnerRegistered,
    new_typed_event,
    parse_data,
    parse_event_data,
)
from shared.contracts.topics import TOPIC_FOR_TYPE
from shared.kernel.money import format_fen
from shared.messaging.consumer import dead_letter_event
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from tools.samples import BASE, ENTERPRISE, make_body

T0 = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
CATALOG = load_catalog()


def assert_same_wire(model: type[EventData], data: dict[str, Any]) -> EventData:
    """`data` validated into `model` dumps to the same bytes (orjson keeps key order)."""
    parsed = model.model_validate(data)
    assert orjson.dumps(parsed.to_data()) == orjson.dumps(data)
    return parsed


def assert_publishes_the_same(parsed: EventData, data: dict[str, Any]) -> None:
    """Built through new_typed_event: the same type and data as new_event with the dict."""
    event = new_typed_event(parsed, source="tests", subject="s", time=T0)
    assert event.type == parsed.event_type
    assert orjson.dumps(event.to_wire()["data"]) == orjson.dumps(data)


def event_of(event_type: str, data: dict[str, Any], subject: str = "app_1") -> Event:
    return new_event(event_type, source="tests", subject=subject, data=data, time=T0)


# ---------------------------------------------------------------------------------------------
# Today's builders
# ---------------------------------------------------------------------------------------------


def received_data(body: dict[str, Any], app_id: str = "app_0123456789abcdef") -> dict[str, Any]:
    """As intake builds it: the application as policy validation normalised it."""
    application, errors = validate_application(body, CATALOG)
    assert application is not None, errors
    return {"application_id": app_id, "partner_id": "ptn_0123456789abcdef0123", "application": application.to_wire(),
            "call_id": "call_0123456789abcdef0123"}


def sample_bodies() -> Iterator[tuple[str, dict[str, Any]]]:
    for program in BASE:
        yield program, make_body(program)
    yield "ineligible", make_body("GT-EQUITY", applicant={"registered_in_shanghai": False})
    yield "out-of-window", make_body("GT-EQUITY", facts={"event_date": "2019-01-01"})
    yield "requested", make_body("GT-EQUITY", requested_amount="100000.50")


SAMPLES = list(sample_bodies())


def assessed_event(body: dict[str, Any], app_id: str = "app_0123456789abcdef") -> Event:
    """eligibility's real builder: application.received in, application.assessed out."""
    received = event_of("application.received", received_data(body, app_id), app_id)
    event, _key = eligibility.assessed_event(assess_received(received, CATALOG))
    return event


def decided(receipt_event: Event, pools: dict[PoolKey, PoolState] | None = None,
            live: LiveAward | None = None) -> dict[str, Any]:
    """the ledger's real builder: the receipt parsed, decided, and its award.decided data."""
    item = parse_item(receipt_event)
    decision = decide_award(item.assessment, pools or {}, live)
    return decided_data(item, decision)


def revoked_data(decision: dict[str, Any], amount_fen: int) -> dict[str, Any]:
    """As the ledger's revoke_award builds it from the stored decision (a database path)."""
    return {
        "application_id": decision["application_id"],
        "partner_id": decision.get("partner_id"),
        "program": decision["program"],
        "year": decision["year"],
        "applicant": decision.get("applicant") or {"id": ENTERPRISE, "name": None},
        "subject": decision["subject"],
        "amount": format_fen(amount_fen),
        "reason": "资料不实",
        "revoked_by": "operator",
        "revoked_at": T0.isoformat(),
    }


class Record(SimpleNamespace):
    """The fields of a ConsumerRecord the dead-letter builder reads."""


# ---------------------------------------------------------------------------------------------
# Round trips, one type at a time
# ---------------------------------------------------------------------------------------------


def test_every_event_type_has_one_model() -> None:
    assert set(EVENT_DATA) == set(TOPIC_FOR_TYPE)
    assert all(model.event_type == t for t, model in EVENT_DATA.items())


def test_partner_registered_round_trips() -> None:
    data = {"partner_id": "ptn_0123456789abcdef0123", "name": "某某合作方", "callback_url": "https://p.example/hook",
            "api_key_hash": "9f" * 32}
    parsed = assert_same_wire(PartnerRegistered, data)
    assert_publishes_the_same(parsed, data)


@pytest.mark.parametrize(("case", "body"), SAMPLES, ids=[c for c, _ in SAMPLES])
def test_application_received_round_trips(case: str, body: dict[str, Any]) -> None:
    data = received_data(body)
    parsed = assert_same_wire(ApplicationReceived, data)
    assert_publishes_the_same(parsed, data)
    assert isinstance(parsed, ApplicationReceived)
    assert ("requested_amount" in parsed.application.to_data()) == ("requested_amount" in body)


@pytest.mark.parametrize(("case", "body"), SAMPLES, ids=[c for c, _ in SAMPLES])
def test_application_assessed_round_trips(case: str, body: dict[str, Any]) -> None:
    data = assessed_event(body).data
    parsed = assert_same_wire(ApplicationAssessed, data)
    assert_publishes_the_same(parsed, data)
    assert isinstance(parsed, ApplicationAssessed)
    assert parsed.eligible == (case not in ("ineligible", "out-of-window"))
    assert parsed.inputs is not None and ("requested_amount" in parsed.inputs.to_data())  # null when none


def _decisions() -> Iterator[tuple[str, dict[str, Any]]]:
    receipt = assessed_event(make_body("GT-EQUITY"))
    assessment = parse_item(receipt).assessment
    entitlement = assessment.entitlement_fen
    key = assessment.pools[0].key
    cap = assessment.pools[0].cap_fen
    yield "approved", decided(receipt)
    yield "partially_approved", decided(receipt, {key: PoolState(key, cap, cap - entitlement // 4)})
    yield "cap_exhausted", decided(receipt, {key: PoolState(key, cap, cap)})
    yield "duplicate", decided(receipt, live=LiveAward("app_earlier", "GT-PCT", entitlement))
    yield "top_up", decided(receipt, live=LiveAward("app_earlier", "GT-PCT", entitlement // 2))
    yield "ineligible", decided(assessed_event(make_body("GT-EQUITY", applicant={"registered_in_shanghai": False})))
    yield "subject_pool", decided(assessed_event(make_body("GT-PCT")))
    yield "pending_review", decided(assessed_event(make_body("GT-PRODUCT")))
    yield "no_partner_no_name", decided(event_of("application.assessed", {
        k: v for k, v in receipt.data.items() if k != "partner_id"
    } | {"applicant": {"id": ENTERPRISE}}, receipt.subject))


DECISIONS = list(_decisions())


@pytest.mark.parametrize(("case", "data"), DECISIONS, ids=[c for c, _ in DECISIONS])
def test_award_decided_round_trips(case: str, data: dict[str, Any]) -> None:
    parsed = assert_same_wire(AwardDecided, data)
    assert_publishes_the_same(parsed, data)


def test_the_decisions_cover_every_status_and_the_nulls() -> None:
    assert {d["status"] for _, d in DECISIONS} == {"approved", "partially_approved", "rejected", "ineligible",
                                                   "pending_review"}
    pending = dict(DECISIONS)["pending_review"]
    assert (pending["awarded"], pending["held"], pending["review"]) == ("0.00", pending["entitlement"], "required")
    assert all(d["review"] == "auto" for c, d in DECISIONS if c != "pending_review")
    assert any(d["limited_by"] for _, d in DECISIONS) and any(d["top_up_of"] for _, d in DECISIONS)
    no_partner = dict(DECISIONS)["no_partner_no_name"]
    assert no_partner["partner_id"] is None and no_partner["applicant"]["name"] is None


@pytest.mark.parametrize(("case", "decision"), DECISIONS[:2], ids=[c for c, _ in DECISIONS[:2]])
def test_award_revoked_round_trips(case: str, decision: dict[str, Any]) -> None:
    data = revoked_data(decision, 40_000_000)
    parsed = assert_same_wire(AwardRevoked, data)
    assert_publishes_the_same(parsed, data)


def test_award_revoked_round_trips_for_a_decision_without_applicant() -> None:
    decision = {k: v for k, v in DECISIONS[0][1].items() if k != "applicant"} | {"partner_id": None}
    data = revoked_data(decision, 1)
    assert data["applicant"] == {"id": ENTERPRISE, "name": None}
    assert_same_wire(AwardRevoked, data)


@pytest.mark.parametrize(("case", "decision"), DECISIONS[:2], ids=[c for c, _ in DECISIONS[:2]])
def test_announcement_published_round_trips(case: str, decision: dict[str, Any]) -> None:
    data = notify_domain.published_data(AwardDecided.model_validate(decision), application_id=decision["application_id"],
                                        published_at=T0, notice_ends_at=T0 + timedelta(hours=1)).to_data()
    parsed = assert_same_wire(AnnouncementPublished, data)
    assert_publishes_the_same(parsed, data)


def test_announcement_published_round_trips_with_a_null_name_and_partner() -> None:
    decision = dict(DECISIONS)["no_partner_no_name"]
    data = notify_domain.published_data(AwardDecided.model_validate(decision), application_id=decision["application_id"],
                                        published_at=T0, notice_ends_at=T0 + timedelta(days=7)).to_data()
    assert data["partner_id"] is None and data["applicant_name"] is None
    assert_same_wire(AnnouncementPublished, data)


def finalized_data(amount_fen: int, finalized_at: datetime) -> dict[str, Any]:
    """As notify's finaliser builds it from the announcement row (a database path)."""
    return {"application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
            "subject": "ROUND-2024-B", "amount": format_fen(amount_fen), "finalized_at": finalized_at.isoformat()}


def test_award_finalized_round_trips() -> None:
    data = finalized_data(160_000_000, T0)
    parsed = assert_same_wire(AwardFinalized, data)
    assert_publishes_the_same(parsed, data)


def _dead_letters() -> Iterator[tuple[str, dict[str, Any]]]:
    original = event_of("award.decided", DECISIONS[0][1])
    record = Record(topic="ns.grantline.awards", partition=2, offset=41, key=ENTERPRISE.encode(),
                    value=original.to_bytes())
    yield "exception", dead_letter_event("ledger", "notify.awards", record, ValueError("award.decided: bad"),
                                         original).data
    yield "message", dead_letter_event("ledger", "notify.awards", record, "not handled", original).data
    poison = Record(topic="ns.grantline.awards", partition=0, offset=7, key=None, value=b"not json \x00")
    yield "poison", dead_letter_event("notify", "notify.awards", poison, ValueError("not an envelope"), None).data
    tombstone = Record(topic="ns.grantline.awards", partition=0, offset=8, key=b"k", value=None)
    yield "tombstone", dead_letter_event("notify", "notify.awards", tombstone, "empty message", None).data
    big = Record(topic="t", partition=0, offset=9, key=b"k", value=b"x" * 60_001)
    yield "too_big_for_b64", dead_letter_event("notify", "notify.awards", big, "too big", None).data
    # the consumer loop's last resort (_dead_letter_all, a database path): a minimal form
    yield "whole_batch", {"consumer": "notify.awards", "topic": "ns.grantline.awards", "partition": 0, "offset": 9,
                          "error": "the batch failed repeatedly outside its handlers",
                          "original_b64": base64.b64encode(b"{}").decode()}


DEAD_LETTERS = list(_dead_letters())


@pytest.mark.parametrize(("case", "data"), DEAD_LETTERS, ids=[c for c, _ in DEAD_LETTERS])
def test_event_dead_lettered_round_trips(case: str, data: dict[str, Any]) -> None:
    parsed = assert_same_wire(EventDeadLettered, data)
    assert_publishes_the_same(parsed, data)


def test_the_dead_letters_cover_null_and_absent_keys() -> None:
    forms = dict(DEAD_LETTERS)
    assert forms["poison"]["key"] is None and "key" not in forms["whole_batch"]
    assert forms["tombstone"]["original"] is None and "original_b64" not in forms["tombstone"]
    assert "trace" in forms["exception"] and "trace" not in forms["message"]


# ---------------------------------------------------------------------------------------------
# Today's wire, written out: the key order and nulls the publishers have always produced
# ---------------------------------------------------------------------------------------------


GOLDEN: dict[str, dict[str, Any]] = {
    "award.decided": {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
        "applicant": {"id": ENTERPRISE, "name": "上海某某生物科技有限公司"}, "subject": "ROUND-2024-B",
        "status": "partially_approved", "entitlement": "1600000.00", "awarded": "400000.00",
        "limited_by": "GT-EQUITY/beneficiary-year",
        "reasons": [{"code": "CAP_PARTLY_USED", "message": "m", "citation": "000 §五(六)"}], "top_up_of": None,
        "draws": [{"pool": "GT-EQUITY/beneficiary-year", "beneficiary": ENTERPRISE, "year": 2024, "subject": None,
                   "amount": "400000.00"}],
        "catalog_version": "sha256:00",
        "review": "auto",
    },
    "award.revoked": {
        "application_id": "app_1", "partner_id": None, "program": "GT-EQUITY", "year": 2024,
        "applicant": {"id": ENTERPRISE, "name": None}, "subject": "ROUND-2024-B", "amount": "400000.00",
        "reason": "资料不实", "revoked_by": "operator", "revoked_at": "2024-06-01T09:30:00+00:00",
    },
    "announcement.published": {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
        "applicant_name": "上海某某生物科技有限公司", "subject": "ROUND-2024-B", "amount": "400000.00",
        "published_at": "2024-06-01T09:30:00+00:00", "notice_ends_at": "2024-06-08T09:00:00+00:00",
    },
    "award.finalized": {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
        "subject": "ROUND-2024-B", "amount": "400000.00", "finalized_at": "2024-06-08T09:00:01.123456+00:00",
    },
    "partner.registered": {"partner_id": "ptn_1", "name": "n", "callback_url": "https://x", "api_key_hash": "h"},
    "event.dead_lettered": {
        "consumer": "intake.status", "topic": "grantline.awards", "partition": 0, "offset": 3, "key": None,
        "error": "ValueError: x", "original": None, "trace": "Traceback…",
    },
}


@pytest.mark.parametrize("event_type", sorted(GOLDEN))
def test_the_written_out_wire_round_trips(event_type: str) -> None:
    assert_same_wire(EVENT_DATA[event_type], GOLDEN[event_type])


REVIEWED: dict[str, Any] = {
    "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-PRODUCT", "year": 2025,
    "applicant": {"id": ENTERPRISE, "name": "上海某某生物科技有限公司"}, "subject": "PRODUCT-1",
    "decision": "approve", "status": "partially_approved", "held": "30000000.00", "awarded": "20000000.00",
    "released": "10000000.00", "limited_by": None,
    "reasons": [{"code": "REVIEW_REDUCED", "message": "m", "citation": ""}],
    "reviewed_by": {"id": "stf_1", "name": "张三"}, "reason": "核定", "reviewed_at": "2025-06-01T09:30:00+00:00",
    "draws": [],
}
CALL_ID = "call_0123456789abcdef0123"


def test_award_decided_and_reviewed_without_a_call_keep_todays_bytes() -> None:
    """History from before calls were passed on: no `call_id` key, accepted by publishers and
    consumers, dumped byte for byte as before."""
    for model, data in ((AwardDecided, GOLDEN["award.decided"]), (AwardReviewed, REVIEWED)):
        parsed = assert_same_wire(model, data)
        assert "call_id" not in parsed.to_data() and parsed.model_dump()["call_id"] is None
        assert_publishes_the_same(parsed, data)  # not refused as incomplete: optional on the wire


@pytest.mark.parametrize(("model", "data"), [(AwardDecided, GOLDEN["award.decided"]), (AwardReviewed, REVIEWED)],
                         ids=["award.decided", "award.reviewed"])
def test_award_events_carry_the_call_last(model: type[EventData], data: dict[str, Any]) -> None:
    published = with_call(data, CALL_ID)
    parsed = assert_same_wire(model, published)
    assert list(parsed.to_data().items())[-1] == ("call_id", CALL_ID)
    # The bytes of before, then the call: nothing else moves.
    assert orjson.dumps(parsed.to_data()) == orjson.dumps(data)[:-1] + b',"call_id":"' + CALL_ID.encode() + b'"}'
    assert as_stored(published) == data  # what decisions.data and reviews.data keep
    assert with_call(data, None) is data


def test_a_receipt_with_a_call_gives_the_call_to_the_decision() -> None:
    receipt = assessed_event(make_body("GT-EQUITY"))
    called = event_of("application.assessed", {**receipt.data, "call_id": CALL_ID}, receipt.subject)
    assert parse_item(called).assessment.call_id == CALL_ID
    no_call = parse_item(event_of("application.assessed", {k: v for k, v in receipt.data.items() if k != "call_id"},
                                  receipt.subject))
    assert no_call.assessment.call_id is None


@pytest.mark.parametrize("model", [AwardDecided, AwardReviewed])
def test_a_null_or_empty_call_is_refused(model: type[EventData]) -> None:
    data = GOLDEN["award.decided"] if model is AwardDecided else REVIEWED
    for bad in (None, ""):
        with pytest.raises(ValidationError, match="call_id"):
            model.model_validate({**data, "call_id": bad})


def test_the_models_declare_fields_in_the_wire_order() -> None:
    """A model built from keywords in any order dumps in the publishers' order."""
    golden = GOLDEN["award.decided"]
    built = AwardDecided(**dict(reversed(list(golden.items()))))
    assert list(built.to_data()) == list(golden)


# ---------------------------------------------------------------------------------------------
# Tolerance: what today's consumers accept still parses
# ---------------------------------------------------------------------------------------------


TOLERATED: list[tuple[str, dict[str, Any]]] = [
    # intake's projection reads partial downstream events (tests/integration/test_intake_api.py,
    # test_event_history.py, tests/unit/test_intake_projection.py)
    ("application.assessed", {"application_id": "app_1", "eligible": True, "entitlement": "1600000.00",
                              "reasons": [], "rules": [{"id": "r1", "passed": True}]}),
    ("application.assessed", {"eligible": False}),
    ("award.decided", {"application_id": "app_1", "status": "approved", "entitlement": "1.00", "awarded": "1.00",
                       "limited_by": None, "reasons": []}),
    ("award.decided", {"status": "rejected"}),
    ("award.revoked", {"application_id": "app_1", "reason": "r", "revoked_by": "operator", "amount": "1.00"}),
    ("award.revoked", {"reason": "fraud", "amount": "1600000.00"}),
    ("announcement.published", {"application_id": "app_1", "published_at": None, "notice_ends_at": None}),
    ("award.finalized", {"finalized_at": None}),
    # notify reads decisions whose draws name only pool and amount (test_notify_webhooks.py)
    ("award.decided", {**GOLDEN["award.decided"], "draws": [{"pool": "GT-EQUITY/beneficiary-year",
                                                             "amount": "400000.00"}]}),
    # the ledger decides on receipts whose applicant has no kind, with made-up codes (the benches)
    ("application.assessed", {
        "application_id": "app_bench_000001", "partner_id": "ptn_bench", "program": "GT-EQUITY", "year": 2024,
        "applicant": {"id": "9131BENCH000000001", "name": "bench"}, "subject": "ROUND-1", "eligible": True,
        "entitlement": "1000.00", "reasons": [], "rules": [],
        "pools": [{"pool": "GT-EQUITY/beneficiary-year", "scope": "beneficiary_year",
                   "beneficiary": "9131BENCH000000001", "year": 2024, "subject": None, "cap": "5000.00",
                   "citation": "000 §五(六)"}],
        "overlap": {"applicant": "9131BENCH000000001", "subject": "ROUND-1", "milestone": "financing"},
        "catalog_version": "bench"}),
    # reasons without a citation (the ledger reads it as "")
    ("award.decided", {"status": "rejected", "reasons": [{"code": "ZERO_ENTITLEMENT", "message": "m"}]}),
    # unknown keys (a newer producer) are kept
    ("award.finalized", {"finalized_at": "2024-06-01T00:00:00Z", "note": {"new": True}}),
    # the dead-letter list shows whatever a dead letter holds
    ("event.dead_lettered", {}),
]


@pytest.mark.parametrize(("event_type", "data"), TOLERATED, ids=[f"{t}-{i}" for i, (t, _) in enumerate(TOLERATED)])
def test_what_consumers_tolerate_today_still_parses(event_type: str, data: dict[str, Any]) -> None:
    parsed = parse_event_data(event_of(event_type, data))
    assert type(parsed) is EVENT_DATA[event_type]
    assert parsed.to_data() == data  # forwarded unchanged (keys in the publishers' order)


def test_optional_fields_read_as_none_or_empty() -> None:
    data = parse_data(event_of("award.decided", {"status": "rejected"}), AwardDecided)
    assert (data.application_id, data.partner_id, data.awarded, data.reasons, data.draws) == (None, None, None, [], [])
    assert data.to_data() == {"status": "rejected"}


# ---------------------------------------------------------------------------------------------
# Malformed data raises
# ---------------------------------------------------------------------------------------------


RECEIVED_OK = received_data(make_body("GT-EQUITY"))
ASSESSED_OK = assessed_event(make_body("GT-EQUITY")).data

MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    # (type, data, what the error names)
    ("partner.registered", {"partner_id": "ptn_x"}, "data.name: Field required"),
    ("partner.registered", {**GOLDEN["partner.registered"], "api_key_hash": None}, "data.api_key_hash"),
    ("application.received", {"application_id": 7}, "data.application_id"),
    ("application.received", {"application_id": "app_x", "partner_id": "ptn_x"}, "data.application: Field required"),
    ("application.received", {**RECEIVED_OK, "application": [1]}, "data.application"),
    ("application.received", {**RECEIVED_OK, "application": {**RECEIVED_OK["application"], "year": "2024"}},
     "data.application.year"),
    ("application.received", {**RECEIVED_OK, "application": {**RECEIVED_OK["application"], "requested_amount": 1.5}},
     "data.application.requested_amount"),
    ("application.assessed", {"application_id": "app_1", "eligible": True, "entitlement": "abc", "reasons": []},
     "data.entitlement: must be a decimal string"),
    ("application.assessed", {"eligible": "yes"}, "data.eligible"),
    ("application.assessed", {"entitlement": "1.00"}, "data.eligible: Field required"),
    ("application.assessed", {**ASSESSED_OK, "entitlement": "-1.00"}, "must not be negative"),
    ("application.assessed", {**ASSESSED_OK, "entitlement": 1600000.0}, "data.entitlement"),
    ("application.assessed", {**ASSESSED_OK, "entitlement": None}, "data.entitlement: must not be null"),
    ("application.assessed", {**ASSESSED_OK, "reasons": None}, "data.reasons"),
    ("application.assessed", {**ASSESSED_OK, "year": True}, "data.year"),
    ("application.assessed", {**ASSESSED_OK, "pools": [{**ASSESSED_OK["pools"][0], "cap": "1.234"}]},
     "data.pools[0].cap: must have at most two decimal places"),
    ("application.assessed", {**ASSESSED_OK, "overlap": {"applicant": "x", "subject": "y"}},
     "data.overlap.milestone: Field required"),
    ("application.assessed", {**ASSESSED_OK, "applicant": {"name": "n"}}, "data.applicant.id: Field required"),
    ("application.assessed", {**ASSESSED_OK, "application_id": ""}, "data.application_id"),
    ("award.decided", {"status": "bogus", "entitlement": "abc", "awarded": "abc"}, "data.status"),
    ("award.decided", {"application_id": "app_1", "status": "maybe"}, "data.status"),
    ("award.decided", {**GOLDEN["award.decided"], "year": "MMXXIV"}, "data.year: Input should be a valid integer"),
    ("award.decided", {**GOLDEN["award.decided"], "applicant": "上海某某"}, "data.applicant"),
    ("award.decided", {**GOLDEN["award.decided"], "awarded": "400000.001"}, "data.awarded"),
    ("award.decided", {**GOLDEN["award.decided"], "reasons": [{"message": "m"}]}, "data.reasons[0].code"),
    ("award.decided", {**GOLDEN["award.decided"], "draws": [{"pool": "p", "amount": 5}]}, "data.draws[0].amount"),
    ("award.revoked", {**GOLDEN["award.revoked"], "revoked_at": "yesterday"}, "data.revoked_at"),
    ("award.revoked", {**GOLDEN["award.revoked"], "amount": "1,000.00"}, "data.amount"),
    ("announcement.published", {"application_id": "app_1", "published_at": 12, "notice_ends_at": "never"},
     "data.published_at"),
    ("announcement.published", {"notice_ends_at": "never"}, "data.notice_ends_at: must be an RFC 3339 time"),
    ("award.finalized", {"finalized_at": "t3"}, "data.finalized_at"),
    ("event.dead_lettered", {"consumer": "c", "offset": "3"}, "data.offset"),
]


@pytest.mark.parametrize(("event_type", "data", "named"), MALFORMED,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MALFORMED)])
def test_malformed_data_raises_naming_the_type_and_field(event_type: str, data: dict[str, Any], named: str) -> None:
    model = EVENT_DATA[event_type]
    with pytest.raises(ValidationError):
        model.model_validate(data)
    with pytest.raises(ValueError) as raised:
        parse_data(event_of(event_type, data), model)
    assert type(raised.value) is ValueError  # the dead letter says "ValueError: ..." (test_poison_events)
    assert str(raised.value).startswith(f"{event_type}: ")
    assert named in str(raised.value)


def test_the_error_shows_the_value_found() -> None:
    with pytest.raises(ValueError, match="MMXXIV"):
        parse_data(event_of("award.decided", {**GOLDEN["award.decided"], "year": "MMXXIV"}), AwardDecided)


def test_parsing_as_another_type_or_an_unknown_type_raises() -> None:
    with pytest.raises(ValueError, match=r"award\.revoked: not award\.decided data"):
        parse_data(event_of("award.revoked", GOLDEN["award.revoked"]), AwardDecided)
    with pytest.raises(ValueError, match="no data model"):
        parse_event_data(event_of("award.reconsidered", {}))


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def test_a_typed_event_carries_the_envelope_of_new_event() -> None:
    cause = event_of("application.assessed", ASSESSED_OK)
    data = AwardDecided.model_validate(GOLDEN["award.decided"])
    event = new_typed_event(data, source="grantline.ledger", subject="app_1", causation=cause, time=T0)
    assert (event.type, event.source, event.subject, event.time) == ("award.decided", "grantline.ledger", "app_1", T0)
    assert (event.causation_id, event.correlation_id) == (str(cause.id), cause.correlation_id)
    assert event.data == GOLDEN["award.decided"]
    assert parse_data(event, AwardDecided) == data


def test_a_typed_event_may_take_its_id_and_its_cause_from_a_row() -> None:
    """notify's finaliser: the id stored with the announcement, the decision known by its id."""
    data = AwardFinalized.model_validate(GOLDEN["award.finalized"])
    event_id, decided_id = uuid.uuid4(), str(uuid.uuid4())
    event = new_typed_event(data, source="grantline.notify", subject="app_1", correlation_id="corr-1",
                            time=T0, event_id=event_id, causation_id=decided_id)
    assert (event.id, event.causation_id, event.correlation_id) == (event_id, decided_id, "corr-1")
    alone = new_typed_event(data, source="s", subject="app_1", event_id=event_id)
    assert (alone.id, alone.correlation_id, alone.causation_id) == (event_id, str(event_id), None)


def test_a_publisher_that_leaves_out_a_field_is_refused() -> None:
    incomplete = AwardDecided(application_id="app_1", status="approved", awarded="1.00")
    with pytest.raises(TypeError, match="partner_id"):
        new_typed_event(incomplete, source="s", subject="app_1")


def test_the_dead_letter_may_leave_out_what_the_minimal_form_does_not_write() -> None:
    minimal = EventDeadLettered(consumer="c", topic="t", partition=0, offset=1, error="e", original_b64="")
    event = new_typed_event(minimal, source="s", subject="t/0/1")
    assert list(event.data) == ["consumer", "topic", "partition", "offset", "error", "original_b64"]


def test_models_built_from_keywords_validate_too() -> None:
    with pytest.raises(ValidationError):
        AwardFinalized(finalized_at="not a time")
    with pytest.raises(ValidationError):
        PartnerRegistered(partner_id="", name="n", callback_url="u", api_key_hash="h")
    with pytest.raises(ValidationError):
        AwardDecided(status="approved", year=2024.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("event_type", sorted(EVENT_DATA))
def test_every_model_has_a_json_schema(event_type: str) -> None:
    """The AsyncAPI document is to be generated from these models."""
    schema = EVENT_DATA[event_type].model_json_schema()
    assert schema["type"] == "object" and schema["additionalProperties"] is True
