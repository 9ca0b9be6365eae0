"""The AsyncAPI 3.0.0 document of each service (`GET /asyncapi.json`), generated from the typed
event models (shared.contracts.events), the envelope and the topic map, so that what partners and
other teams read is what the code builds and parses.

Per service: `channels` are the topics it sends or receives on (address = the topic name, messages =
every event type that travels there), `operations` say what it sends (the topics it publishes, per
CONTRACT.md "Events", and the dead-letter topic, which every consumer writes to) and what each of
its consumers receives, `components.messages` hold one message per event type (payload = the
envelope with `data` = the model's JSON Schema) and `components.schemas` the models. Notify's also
describes the signed webhooks it POSTs to each partner's callback URL.

Who publishes a topic and what each consumer takes are declared here, not discovered: this module
sits below the services (it must not import them). tests/unit/test_asyncapi.py checks both maps
against the services' real subscriptions and notify's webhook types.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from shared.contracts import topics
from shared.contracts.envelope import Event
from shared.contracts.events import EVENT_DATA, PaymentStep, _amount, _instant, _iso_date, _not_null
from shared.kernel.money import _AMOUNT

ASYNCAPI_VERSION = "3.0.0"
SERVICES = ("intake", "eligibility", "ledger", "notify")
KAFKA_BINDING = "0.5.0"
HTTP_BINDING = "0.3.0"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"  # shared.config.settings' default (`make up`'s broker)

SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"

PUBLISHER: dict[str, str] = {
    topics.PARTNERS: "intake",
    topics.POLICY: "eligibility",
    topics.APPLICATIONS: "intake",
    topics.ASSESSMENTS: "eligibility",
    topics.AWARDS: "ledger",
    topics.ANNOUNCEMENTS: "notify",
    topics.PAYMENTS: "ledger",
}
"""Who publishes each topic (CONTRACT.md "Events"); grantline.dlq has no single publisher: every
service's consumer loop writes the events it could not process there."""


@dataclass(frozen=True)
class Consumer:
    """One of a service's consumers (shared.messaging.consumer.Subscription): its consumer group is
    `grantline-<service>.<name>`; of the types on `topics` it reads `types`, the rest it skips."""

    service: str
    name: str
    topics: tuple[str, ...]
    types: frozenset[str]


_DIRECTORY = frozenset({"partner.registered", "staff.registered", "staff.deactivated"})
# The steps of a payment order (not the batch events beside them on the same topic, which only the
# ledger's replay reads).
_PAYMENTS = frozenset(t for t, model in EVENT_DATA.items() if issubclass(model, PaymentStep))

CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        "intake", "status", (topics.ASSESSMENTS, topics.AWARDS, topics.ANNOUNCEMENTS, topics.PAYMENTS),
        frozenset({
            "application.assessed", "award.decided", "award.reviewed", "award.revoked", "announcement.published",
            "objection.filed", "objection.resolved", "award.finalized",
        }) | _PAYMENTS,
    ),
    Consumer("intake", "policy", (topics.POLICY,), frozenset({"catalog.published", "call.opened", "call.closed"})),
    Consumer("eligibility", "assess", (topics.APPLICATIONS,), frozenset({"application.received"})),
    Consumer("eligibility", "partners", (topics.PARTNERS,), _DIRECTORY),
    Consumer("ledger", "decide", (topics.ASSESSMENTS,), frozenset({"application.assessed"})),
    Consumer("ledger", "partners", (topics.PARTNERS,), _DIRECTORY),
    Consumer("ledger", "objections", (topics.ANNOUNCEMENTS,), frozenset({"objection.resolved"})),
    Consumer("ledger", "payees", (topics.APPLICATIONS,), frozenset({"application.received", "payee.updated"})),
    Consumer("ledger", "payments", (topics.ANNOUNCEMENTS,), frozenset({"award.finalized"})),
    Consumer("notify", "awards", (topics.AWARDS,), frozenset({"award.decided", "award.reviewed", "award.revoked"})),
    Consumer("notify", "payments", (topics.PAYMENTS,), _PAYMENTS),
    Consumer("notify", "policy", (topics.POLICY,), frozenset({"call.opened"})),
    Consumer("notify", "partners", (topics.PARTNERS,), _DIRECTORY),
)
"""Every consumer of every service (their `subscriptions(ctx)` in services/*/app.py)."""

WEBHOOK_TYPES: frozenset[str] = frozenset({
    "award.decided", "award.reviewed", "award.revoked", "award.finalized", "objection.resolved",
}) | _PAYMENTS
"""The event types notify POSTs to the owning partner (services.notify.domain.WEBHOOK_TYPES and
its payment steps)."""

_DESCRIPTIONS = {
    "intake": "Partners post applications here; intake publishes partners, staff and applications, and "
              "projects every downstream event into the application's status and timeline.",
    "eligibility": "Assesses `application.received` under its call's catalog version into "
                   "`application.assessed`; publishes catalog versions and calls (申报批次).",
    "ledger": "Decides awards against caps and the overlap rule, holds them for review (核定), revokes them, "
              "and orders and follows their payments.",
    "notify": "The public announcement (公示), objections and finalisation; signed webhooks to each partner's "
              "callback URL for decisions, reviews, revocations, finalisations and payment steps.",
}

_TOPIC_TEXT = {
    topics.PARTNERS: ("Partners and staff", "Partner and staff registrations, replicated into every service's "
                      "directory. Key: the partner's or staff member's id."),
    topics.POLICY: ("Policy", "Catalog versions and calls for applications (申报批次). Key: the program code "
                    "(a catalog version: the version)."),
    topics.APPLICATIONS: ("Applications", "Applications as received, and payee updates. Key: the applicant id."),
    topics.ASSESSMENTS: ("Assessments", "Eligibility's assessment receipts. Key: the applicant id."),
    topics.AWARDS: ("Awards", "Decisions, reviews (核定) and revocations. Key: the applicant id."),
    topics.ANNOUNCEMENTS: ("Announcements", "The 公示: announcements, objections and their resolutions, "
                           "finalisations. Key: the applicant id."),
    topics.PAYMENTS: ("Payments", "Each step of an award's payment order (key: the applicant id), and the "
                      "payment officers' acts on a batch (payment.batch_*, key: the batch id)."),
    topics.DLQ: ("Dead letters", "Events a consumer could not process, with the error; listed and re-driven "
                 "through each service's /v1/dead-letters. Key: the original record's key."),
}

_KEY_TEXT = {
    topics.PARTNERS: "the partner's or staff member's id",
    topics.POLICY: "the program code (catalog.published: the catalog version)",
    topics.DLQ: "the key of the record that could not be processed",
    topics.PAYMENTS: "the applicant id (payment.batch_*: the batch id)",
}

_ENVELOPE_TEXT = {
    "id": "Unique; the consumers' dedupe key.",
    "type": "The event type (it names the model of `data`).",
    "source": "The publisher, e.g. grantline.ledger.",
    "time": "RFC 3339.",
    "subject": "The application id (a call, catalog version, partner or staff id for policy and directory "
               "events).",
    "data_version": "The version of `data`'s shape.",
    "correlation_id": "Shared by every event of one chain (an application's, a request's).",
    "causation_id": "The id of the event that caused this one; null for the first of a chain.",
    "data": "The event type's own fields.",
}


def _short(topic: str) -> str:
    return topic.removeprefix("grantline.")


def _types_on(topic: str) -> list[str]:
    return [t for t, on in topics.TOPIC_FOR_TYPE.items() if on == topic]


class _WireSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema with what the events' field types check written out: money as a
    decimal string with at most two places, times RFC 3339, dates ISO, and `Omittable` fields as
    they are on the wire (absent or a value, never null)."""

    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> JsonSchemaValue:
        out = super().function_after_schema(schema)
        function = schema["function"]["function"]
        if function is _amount:
            out = {**out, "pattern": f"^{_AMOUNT.pattern}$", "examples": ["1600000.00"]}
        elif function is _instant:
            out = {**out, "format": "date-time"}
        elif function is _iso_date:
            out = {**out, "format": "date"}
        return out

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        out = super().function_before_schema(schema)
        if schema["function"]["function"] is _not_null:
            choices = [c for c in out.get("anyOf", []) if c != {"type": "null"}]
            if len(choices) == 1:
                rest = {k: v for k, v in out.items() if k != "anyOf"}
                # Draft 7 (AsyncAPI's schema dialect) ignores a $ref's siblings: keep them beside an allOf.
                out = {"allOf": choices, **rest} if "$ref" in choices[0] and rest else {**choices[0], **rest}
        return out

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        # An Omittable field's default (None) is what a consumer sees for an absent key, not a
        # value ever written: a schema that says "never null" must not show null as its default.
        inner = schema["schema"]
        if out.get("default", 0) is None and inner.get("type") == "function-before":
            func = inner.get("function", {}).get("function")  # type: ignore[union-attr]
            if func is _not_null:
                out = {k: v for k, v in out.items() if k != "default"}
        return out


def event_schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """(event type → its model's schema name, every schema by name) for components.schemas."""
    models = list(EVENT_DATA.values())
    refs, top = models_json_schema(
        [(m, "validation") for m in models], ref_template=SCHEMAS + "{model}", schema_generator=_WireSchema
    )
    names = {m.event_type: refs[(m, "validation")]["$ref"].removeprefix(SCHEMAS) for m in models}
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    envelope = Event.model_json_schema()
    envelope["description"] = (
        "The one event envelope (CloudEvents attribute names), the same on every topic; the Kafka key "
        "travels beside it."
    )
    for field, text in _ENVELOPE_TEXT.items():
        envelope["properties"][field]["description"] = text
    schemas["Envelope"] = envelope
    return names, schemas


def _payload(event_type: str, model: str, envelope: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(envelope)
    payload["title"] = f"{event_type} envelope"
    payload["properties"]["type"] = {"type": "string", "const": event_type}
    payload["properties"]["data"] = {"$ref": SCHEMAS + model}
    return payload


def _first_line(text: str) -> str:
    return text.split("\n\n")[0].replace("\n", " ")


def _message(event_type: str, model: str, envelope: dict[str, Any]) -> dict[str, Any]:
    doc = inspect.cleandoc(EVENT_DATA[event_type].__doc__ or event_type)
    topic = topics.TOPIC_FOR_TYPE[event_type]
    return {
        "name": event_type,
        "title": event_type,
        "summary": _first_line(doc),
        "description": doc,
        "contentType": "application/json",
        "payload": _payload(event_type, model, envelope),
        "correlationId": {
            "description": "Every event of one chain shares it.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _KEY_TEXT.get(topic, "the applicant id")},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _webhook_message(event_type: str, model: str) -> dict[str, Any]:
    return {
        "name": f"webhook.{event_type}",
        "title": f"{event_type} (webhook)",
        "summary": f"`{event_type}` POSTed to the owning partner's callback URL.",
        "contentType": "application/json",
        "headers": {"$ref": SCHEMAS + "WebhookHeaders"},
        "payload": {
            "type": "object",
            "required": ["id", "type", "application_id", "data"],
            "properties": {
                "id": {"type": "string", "format": "uuid",
                       "description": "The event's id, the same as Grantline-Event-Id: dedupe redeliveries on it."},
                "type": {"type": "string", "const": event_type},
                "application_id": {"type": "string", "description": "The application the event is about."},
                "data": {"$ref": SCHEMAS + model},
            },
        },
    }


_WEBHOOK_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["Grantline-Event-Id", "Grantline-Signature"],
    "properties": {
        "Grantline-Event-Id": {"type": "string", "format": "uuid", "description": "The event's id (the body's `id`)."},
        "Grantline-Signature": {
            "type": "string",
            "pattern": "^t=[0-9]{1,12},v1=[0-9a-f]{64}$",
            "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the partner\'s '
                           "webhook secret>. Compare in constant time and refuse a stale t.",
        },
        "Content-Type": {"type": "string", "const": "application/json"},
    },
    "examples": [{
        "Grantline-Event-Id": "3f2c1f4e-9a51-4a3f-8d8e-5b6f0c2d7e91",
        "Grantline-Signature": "t=1767225600,v1=" + "0" * 64,
        "Content-Type": "application/json",
    }],
}


def _version() -> str:
    try:
        return metadata.version("grantline")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def sends(service: str) -> dict[str, list[str]]:
    """topic → the event types `service` publishes there."""
    out = {topic: _types_on(topic) for topic, publisher in PUBLISHER.items() if publisher == service}
    if any(c.service == service for c in CONSUMERS):
        out[topics.DLQ] = _types_on(topics.DLQ)
    return out


def receives(service: str) -> list[tuple[Consumer, str, list[str]]]:
    """(consumer, topic, the event types it reads there) for each of `service`'s consumers."""
    return [
        (c, topic, [t for t in _types_on(topic) if t in c.types])
        for c in CONSUMERS if c.service == service
        for topic in c.topics
    ]


def asyncapi_document(service: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of `service` (one of SERVICES), as JSON-ready dicts."""
    if service not in SERVICES:
        raise ValueError(f"{service}: not a Grantline service ({', '.join(SERVICES)})")
    names, all_schemas = event_schemas()
    envelope = all_schemas["Envelope"]
    published, consumed = sends(service), receives(service)
    used_topics = [t for t in topics.ALL_TOPICS if t in published or any(topic == t for _c, topic, _ts in consumed)]

    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in used_topics:
        title, text = _TOPIC_TEXT[topic]
        on_topic = _types_on(topic)
        channels[_short(topic)] = {
            "address": topic,
            "title": title,
            "description": text + " With GRANTLINE_TOPIC_NAMESPACE set, every address carries that prefix.",
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {t: {"$ref": MESSAGES + t} for t in on_topic},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}},
        }
        for t in on_topic:
            messages[t] = _message(t, names[t], envelope)

    operations: dict[str, Any] = {}
    for topic, types in published.items():
        operations[f"send_{_short(topic)}"] = {
            "action": "send",
            "title": f"{service} publishes on {topic}",
            "summary": "Written in the same transaction as the change it records (the outbox), then relayed.",
            "channel": {"$ref": f"#/channels/{_short(topic)}"},
            "messages": [{"$ref": f"#/channels/{_short(topic)}/messages/{t}"} for t in types],
        }
    for consumer, topic, types in consumed:
        group = f"grantline-{service}.{consumer.name}"
        operations[f"receive_{consumer.name}_{_short(topic)}"] = {
            "action": "receive",
            "title": f"{service}.{consumer.name} consumes {topic}",
            "summary": f"Consumer group {group}; other types on the topic are acknowledged unread, an event "
                       "it cannot process goes to grantline.dlq.",
            "channel": {"$ref": f"#/channels/{_short(topic)}"},
            "messages": [{"$ref": f"#/channels/{_short(topic)}/messages/{t}"} for t in types],
            "bindings": {"kafka": {"groupId": {"type": "string", "const": group}, "bindingVersion": KAFKA_BINDING}},
        }

    servers: dict[str, Any] = {
        "kafka": {
            "host": "{bootstrap}",
            "protocol": "kafka",
            "description": "The deployment's Kafka (or Kafka-protocol) brokers: a placeholder, set from "
                           "KAFKA_BOOTSTRAP_SERVERS.",
            "variables": {"bootstrap": {"default": DEFAULT_BOOTSTRAP,
                                        "description": "host:port of a bootstrap broker (KAFKA_BOOTSTRAP_SERVERS)"}},
        }
    }
    if service == "notify":
        servers["partner"] = {
            "host": "{callback_host}",
            "pathname": "{callback_path}",
            "protocol": "https",
            "description": "Each partner's own endpoint, its `callback_url` (POST /v1/partners): https and a "
                           "public address unless GRANTLINE_ALLOW_PRIVATE_CALLBACKS=1, which also admits http.",
            "variables": {
                "callback_host": {"description": "the callback URL's host (and port)"},
                "callback_path": {"description": "the callback URL's path"},
            },
        }
        hooks = sorted(WEBHOOK_TYPES, key=list(topics.TOPIC_FOR_TYPE).index)
        channels["partner_webhooks"] = {
            "address": None,
            "title": "Partner webhooks",
            "description": "The owning partner's callback_url (one per partner, so no fixed address). Retried "
                           "with exponential backoff on failure or a non-2xx answer; after the last attempt "
                           "parked for operators (GET /v1/deliveries), never dropped silently. Redirects are "
                           "not followed.",
            "servers": [{"$ref": "#/servers/partner"}],
            "messages": {f"webhook.{t}": {"$ref": f"{MESSAGES}webhook.{t}"} for t in hooks},
        }
        for t in hooks:
            messages[f"webhook.{t}"] = _webhook_message(t, names[t])
        operations["send_partner_webhooks"] = {
            "action": "send",
            "title": "notify POSTs each event to its partner",
            "summary": "Signed with the partner's webhook secret; answer 2xx once stored (redeliveries carry the "
                       "same id).",
            "channel": {"$ref": "#/channels/partner_webhooks"},
            "messages": [{"$ref": f"#/channels/partner_webhooks/messages/webhook.{t}"} for t in hooks],
            "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
        }

    schemas = _reachable(messages, all_schemas)
    schemas["Envelope"] = copy.deepcopy(envelope)  # each payload is it with `type` and `data` narrowed
    if service == "notify":
        schemas["WebhookHeaders"] = copy.deepcopy(_WEBHOOK_HEADERS)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": f"urn:grantline:{service}",
        "info": {
            "title": f"Grantline {service} events",
            "version": _version(),
            "description": _DESCRIPTIONS[service] + " Every event is one JSON envelope; `data` is described per "
                           "event type. The HTTP API is at /openapi.json.",
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _reachable(root: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """The schemas `root` refers to, directly or through each other (only what the document uses)."""
    found: dict[str, Any] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(SCHEMAS):
                name = ref.removeprefix(SCHEMAS)
                if name not in found and name in schemas:
                    found[name] = copy.deepcopy(schemas[name])
                    pending.append(found[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return dict(sorted(found.items()))
