"""The AsyncAPI 3.0.0 documents (shared.contracts.asyncapi): valid against the official schema,
complete (every event type a message, every topic a channel, every reference resolvable), true to
the services (their real subscriptions, notify's webhook types), and true to the wire (real
events built by new_typed_event, and notify's real webhook body and signature, validate against
the message schemas; malformed ones do not)."""

from __future__ import annotations

import copy
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from services.eligibility import app as eligibility_app
from services.eligibility import handlers as eligibility
from services.eligibility.domain import assess_received
from services.intake import app as intake_app
from services.ledger import app as ledger_app
from services.ledger.domain import decide_award
from services.ledger.handlers import decided_data, parse_item
from services.notify import app as notify_app
from services.notify import domain as notify_domain
from services.notify.handlers import PAYMENT_STEPS
from shared.contracts.asyncapi import CONSUMERS, PUBLISHER, SERVICES, WEBHOOK_TYPES, asyncapi_document
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import (
    EVENT_DATA,
    Actor,
    AnnouncementPublished,
    Applicant,
    AwardFinalized,
    AwardReviewed,
    AwardRevoked,
    CatalogPublished,
    Draw,
    EventData,
    ObjectionFiled,
    ObjectionResolved,
    PartnerRegistered,
    Payee,
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
    Reason,
    StaffDeactivated,
    StaffRegistered,
    new_typed_event,
)
from shared.contracts.topics import ALL_TOPICS, DLQ, TOPIC_FOR_TYPE
from shared.messaging.consumer import dead_letter_event
from shared.policy.catalog import catalog_version_of, load_catalog
from shared.policy.validation import validate_application
from tests.support.asyncapi import asyncapi_errors, local_refs, payload_errors, resolve
from tests.support.policy import call_closed, call_opened, shipped_document
from tools.samples import ENTERPRISE, make_body

DOCS = {service: asyncapi_document(service) for service in SERVICES}
APP_MODULES: dict[str, Any] = {
    "intake": intake_app, "eligibility": eligibility_app, "ledger": ledger_app, "notify": notify_app,
}
T0 = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
AT = T0.isoformat()
APP = "app_0123456789abcdef"
PTN = "ptn_0123456789abcdef0123"
OPERATOR = Actor(id="operator")
REVIEWER = Actor(id="stf_0123456789abcdef", name="张三")
APPLICANT = Applicant(id=ENTERPRISE, name="上海某某生物科技有限公司")
PAYEE = Payee(account_name="上海某某生物科技有限公司", account_number="6222020200112233445", bank_code="102290000011")


def message_for(service: str, event_type: str) -> dict[str, Any]:
    message = DOCS[service]["components"]["messages"][event_type]
    assert isinstance(message, dict)
    return message


def document_with(event_type: str) -> dict[str, Any]:
    """A service document that carries `event_type` (the publisher's, or any consumer's)."""
    return next(d for d in DOCS.values() if event_type in d["components"]["messages"])


# ---------------------------------------------------------------------------------- validity


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_document_is_valid_asyncapi_3(service: str) -> None:
    document = orjson.loads(orjson.dumps(DOCS[service]))  # as served: JSON, not Python objects
    assert document["asyncapi"] == "3.0.0"
    assert asyncapi_errors(document) == []


@pytest.mark.parametrize(("where", "change", "named"), [
    (("operations", "send_dlq"), {"action": "publish"}, "operations/send_dlq"),
    (("channels", "dlq"), {"adress": "grantline.dlq"}, "channels/dlq"),
    (("components", "schemas", "EventDeadLettered"), {"type": "record"}, "components/schemas/EventDeadLettered"),
    (("servers", "kafka"), {"protocol": None}, "servers/kafka"),
])
def test_the_schema_check_refuses_a_broken_document(where: tuple[str, ...], change: dict[str, Any], named: str) -> None:
    """The validator is not a rubber stamp: each broken part is refused and named."""
    document = copy.deepcopy(DOCS["eligibility"])
    node = document
    for part in where:
        node = node[part]
    node.update(change)
    errors = asyncapi_errors(document)
    assert errors and all(e.startswith(named) for e in errors), errors


@pytest.mark.parametrize("service", SERVICES)
def test_every_reference_resolves_and_operations_name_their_own_channel(service: str) -> None:
    document = DOCS[service]
    for ref in local_refs(document):
        resolve(document, ref)  # KeyError names a dangling reference
    for key, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        assert operation["messages"], key
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), (key, message)


# ---------------------------------------------------------------------------------- completeness


def test_every_event_type_is_a_message_on_its_topic() -> None:
    seen: set[str] = set()
    for document in DOCS.values():
        for channel in document["channels"].values():
            if channel["address"] is None:  # the partner webhooks
                continue
            on_topic = {t for t, topic in TOPIC_FOR_TYPE.items() if topic == channel["address"]}
            assert set(channel["messages"]) == on_topic, channel["address"]
            seen |= on_topic
    assert seen == set(EVENT_DATA)
    for event_type, model in EVENT_DATA.items():
        message = message_for(next(s for s in SERVICES if event_type in DOCS[s]["components"]["messages"]), event_type)
        payload = message["payload"]
        assert payload["properties"]["type"]["const"] == event_type
        assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert message["contentType"] == "application/json"


def test_every_topic_is_a_channel_of_its_publisher_and_dlq_of_every_service() -> None:
    for topic in ALL_TOPICS:
        publishers = [s for s in SERVICES if f"send_{topic.removeprefix('grantline.')}" in DOCS[s]["operations"]]
        assert publishers == (list(SERVICES) if topic == DLQ else [PUBLISHER[topic]]), topic


def test_only_notify_describes_the_partner_webhooks_with_their_headers() -> None:
    assert [s for s in SERVICES if "partner_webhooks" in DOCS[s]["channels"]] == ["notify"]
    notify = DOCS["notify"]
    channel = notify["channels"]["partner_webhooks"]
    assert set(channel["messages"]) == {f"webhook.{t}" for t in WEBHOOK_TYPES}
    assert notify["servers"]["partner"]["protocol"] == "https"
    assert notify["operations"]["send_partner_webhooks"]["bindings"]["http"]["method"] == "POST"
    headers = notify["components"]["schemas"]["WebhookHeaders"]
    assert set(headers["required"]) == {notify_domain.EVENT_ID_HEADER, notify_domain.SIGNATURE_HEADER}


# ---------------------------------------------------------------------------------- true to the services


def _real_consumers(service: str) -> set[tuple[str, tuple[str, ...], frozenset[str]]]:
    settings = SimpleNamespace(consumer_attempts_max=3, notice_period_seconds=60)
    subscriptions = APP_MODULES[service].subscriptions(SimpleNamespace(settings=settings))
    out = set()
    for sub in subscriptions:
        on_topics = {t for t, topic in TOPIC_FOR_TYPE.items() if topic in sub.topics}
        out.add((sub.name, tuple(sub.topics), frozenset(sub.only_types or on_topics)))
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_the_declared_consumers_are_the_services_real_subscriptions(service: str) -> None:
    declared = {(c.name, c.topics, c.types) for c in CONSUMERS if c.service == service}
    assert declared == _real_consumers(service)


@pytest.mark.parametrize("service", SERVICES)
def test_each_receive_operation_lists_what_its_consumer_takes(service: str) -> None:
    document = DOCS[service]
    for consumer in (c for c in CONSUMERS if c.service == service):
        for topic in consumer.topics:
            operation = document["operations"][f"receive_{consumer.name}_{topic.removeprefix('grantline.')}"]
            listed = {m["$ref"].rsplit("/", 1)[1] for m in operation["messages"]}
            assert listed == {t for t in consumer.types if TOPIC_FOR_TYPE[t] == topic}
            assert operation["bindings"]["kafka"]["groupId"]["const"] == f"grantline-{service}.{consumer.name}"


def test_the_webhook_types_are_notifys() -> None:
    assert WEBHOOK_TYPES == notify_domain.WEBHOOK_TYPES | set(PAYMENT_STEPS)


# ---------------------------------------------------------------------------------- true to the wire


def _received() -> dict[str, Any]:
    application, errors = validate_application(make_body("GT-EQUITY"), load_catalog())
    assert application is not None, errors
    return {"application_id": APP, "partner_id": PTN, "application": application.to_wire(),
            "call_id": "call_0123456789abcdef0123", "payee": PAYEE.to_data()}


def _real_pipeline() -> list[Event]:
    """application.received → eligibility's real assessment → the ledger's real decision."""
    received = new_event("application.received", source="grantline.intake", subject=APP, data=_received(), time=T0)
    assessed, _key = eligibility.assessed_event(assess_received(received, load_catalog()))
    item = parse_item(assessed)
    decided = new_event("award.decided", source="grantline.ledger", subject=APP, causation=assessed,
                        data=decided_data(item, decide_award(item.assessment, {}, None)))
    record = SimpleNamespace(topic="grantline.awards", partition=0, offset=7, key=ENTERPRISE.encode(), value=b"{")
    dead = dead_letter_event("notify", "notify.awards", record, ValueError("award.decided: bad"), decided)  # type: ignore[arg-type]
    return [received, assessed, decided, dead]


def _step(model: type[EventData], status: str, **extra: Any) -> EventData:
    return model(order_id="pay_0123", application_id=APP, partner_id=PTN, applicant_id=ENTERPRISE,
                 amount="400000.00", status=status, batch_id="bat_1", masked_account="****3445", at=AT, **extra)


def _built() -> list[EventData]:
    """One model of every other type, as its publisher fills it."""
    call = call_opened("GT-EQUITY", 2024, budget="30000000.00")
    document = shipped_document()
    return [
        PartnerRegistered(partner_id=PTN, name="合作系统", callback_url="https://example.org/hook", api_key_hash="h",
                          registered_by=OPERATOR),
        StaffRegistered(staff_id="stf_1", name="张三", roles=["reviewer"], api_key_hash="h", registered_by=OPERATOR,
                        registered_at=AT),
        StaffDeactivated(staff_id="stf_1", deactivated_by=OPERATOR, reason="离职", deactivated_at=AT),
        CatalogPublished(version=catalog_version_of(document), published_at=AT, published_by=OPERATOR,
                         document=document),
        call,
        call_closed(call, T0),
        PayeeUpdated(application_id=APP, partner_id=PTN, applicant_id=ENTERPRISE, payee=PAYEE, updated_at=AT),
        AwardReviewed(application_id=APP, partner_id=PTN, program="GT-EQUITY", year=2024, applicant=APPLICANT,
                      subject="ROUND-2024-B", decision="approve", status="partially_approved", held="1600000.00",
                      awarded="400000.00", released="1200000.00", limited_by=None,
                      reasons=[Reason(code="REVIEW_REDUCED", message="核减", citation="")], reviewed_by=REVIEWER,
                      reason="核减", reviewed_at=AT,
                      draws=[Draw(pool="GT-EQUITY/beneficiary-year", beneficiary=ENTERPRISE, year=2024, subject=None,
                                  amount="400000.00")]),
        AwardRevoked(application_id=APP, partner_id=None, program="GT-EQUITY", year=2024, applicant=APPLICANT,
                     subject="ROUND-2024-B", amount="400000.00", reason="异议成立", revoked_by="stf_1",
                     revoked_at=AT, reason_code="OBJECTION_UPHELD"),
        AnnouncementPublished(application_id=APP, partner_id=PTN, program="GT-EQUITY", year=2024,
                              applicant_name=None, subject="ROUND-2024-B", amount="400000.00", published_at=AT,
                              notice_ends_at="2024-06-08T09:00:00+00:00", announcement_id="ann_1"),
        ObjectionFiled(objection_id="obj_1", announcement_id="ann_1", application_id=APP, name="李四",
                       contact="13800000000", statement="资料不实", filed_at=AT),
        ObjectionResolved(objection_id="obj_1", announcement_id="ann_1", application_id=APP, partner_id=PTN,
                          outcome="dismissed", reason="查无实据", resolved_by=REVIEWER, resolved_at=AT),
        AwardFinalized(application_id=APP, partner_id=PTN, program="GT-EQUITY", year=2024, subject="ROUND-2024-B",
                       amount="400000.00", finalized_at="2024-06-08T09:00:01.123456+00:00"),
        _step(PaymentOrdered, "ready"),
        _step(PaymentSent, "sent"),
        _step(PaymentSettled, "settled"),
        _step(PaymentFailed, "failed", reason_code="AC04", reason="账户已销户"),
        _step(PaymentReturned, "returned", reason_code="AC06", reason="账户冻结"),
        PaymentBatchCreated(batch_id="bat_1", count=2, control_sum="800000.00", at=AT, program="GT-EQUITY", year=None,
                            created_by=REVIEWER),
        PaymentBatchApproved(batch_id="bat_1", count=2, control_sum="800000.00", at=AT, approved_by=OPERATOR),
        PaymentBatchSent(batch_id="bat_1", count=2, control_sum="800000.00", at=AT,
                         payer=PayerAccount(name="上海市财政局", account="310066726018800000000", bank_code="301290000007"),
                         document_sha256="0" * 64),
    ]


def _events() -> list[Event]:
    built = [new_typed_event(data, source="grantline.tests", subject=APP, time=T0) for data in _built()]
    return _real_pipeline() + built


EVENTS = _events()


def test_the_round_trip_events_cover_every_type() -> None:
    assert {e.type for e in EVENTS} == set(EVENT_DATA)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_a_real_event_validates_against_its_message_payload(event: Event) -> None:
    document = document_with(event.type)
    payload = document["components"]["messages"][event.type]["payload"]
    assert payload_errors(document, payload, orjson.loads(event.to_bytes())) == []


def _broken(event: Event, **data: Any) -> dict[str, Any]:
    wire: dict[str, Any] = orjson.loads(event.to_bytes())
    wire["data"].update(data)
    return wire


@pytest.mark.parametrize(("event_type", "change", "named"), [
    ("award.decided", {"awarded": "400000.001"}, "data/awarded"),        # a third decimal
    ("award.decided", {"awarded": 400000.0}, "data/awarded"),            # a float, not a decimal string
    ("award.decided", {"program": None}, "data/program"),                # Omittable: absent, never null
    ("award.decided", {"status": "granted"}, "data/status"),
    ("payment.settled", {"at": "yesterday"}, "data/at"),                 # not RFC 3339
    ("call.opened", {"event_window": {"from": "2024-13-01", "to": "2024-12-31"}}, "data/event_window/from"),
    ("staff.registered", {"roles": "reviewer"}, "data/roles"),
])
def test_a_malformed_event_does_not_validate(event_type: str, change: dict[str, Any], named: str) -> None:
    event = next(e for e in EVENTS if e.type == event_type)
    document = document_with(event_type)
    payload = document["components"]["messages"][event_type]["payload"]
    errors = payload_errors(document, payload, _broken(event, **change))
    assert errors and any(e.startswith(named) for e in errors), errors


def test_the_envelope_itself_is_checked() -> None:
    event = next(e for e in EVENTS if e.type == "award.decided")
    document = document_with("award.decided")
    payload = document["components"]["messages"]["award.decided"]["payload"]
    for change in ({"type": "award.revoked"}, {"id": "not-a-uuid"}, {"time": "2024-06-01"}, {"subject": None}):
        wire = {**orjson.loads(event.to_bytes()), **change}
        assert payload_errors(document, payload, wire), change
    wire = orjson.loads(event.to_bytes())
    del wire["correlation_id"]
    assert payload_errors(document, payload, wire)


@pytest.mark.parametrize("event", [e for e in EVENTS if e.type in WEBHOOK_TYPES], ids=lambda e: e.type)
def test_notifys_real_webhook_body_and_headers_validate(event: Event) -> None:
    document = DOCS["notify"]
    message = message_for("notify", f"webhook.{event.type}")
    body = notify_domain.webhook_body(str(event.id), event.type, APP, event.data)
    assert payload_errors(document, message["payload"], orjson.loads(body)) == []
    headers = {
        notify_domain.EVENT_ID_HEADER: str(event.id),
        notify_domain.SIGNATURE_HEADER: notify_domain.signature_header("whsec_test", int(time.time()), body),
        "Content-Type": "application/json",
    }
    assert payload_errors(document, message["headers"], headers) == []
    assert payload_errors(document, message["headers"], {**headers, notify_domain.SIGNATURE_HEADER: "v1=abc"})
    assert payload_errors(document, message["headers"], {**headers, notify_domain.EVENT_ID_HEADER: str(uuid.uuid4())[:8]})
