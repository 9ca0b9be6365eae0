"""Prometheus metrics every service exposes at /metrics: requests, consumer lag and batch
sizes, outbox backlog, dead letters (and webhook attempts, counted by notify)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "grantline_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "grantline_http_request_seconds",
    "HTTP request duration",
    ["service", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMED = Counter(
    "grantline_consumer_events_total",
    "Events consumed, by outcome",
    ["service", "consumer", "outcome"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "grantline_consumer_batch_size",
    "Records per consumed batch",
    ["service", "consumer"],
    registry=REGISTRY,
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
CONSUMER_LAG = Gauge(
    "grantline_consumer_lag",
    "Records behind the partition end, summed",
    ["service", "consumer"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "grantline_outbox_backlog", "Outbox rows not yet published", ["service"], registry=REGISTRY
)
OUTBOX_PUBLISHED = Counter(
    "grantline_outbox_published_total", "Outbox rows published", ["service"], registry=REGISTRY
)
DLQ_TOTAL = Counter(
    "grantline_dead_letters_total",
    "Events sent to the dead-letter topic",
    ["service", "consumer"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "grantline_webhook_attempts_total",
    "Webhook delivery attempts, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "grantline_rate_limited_total", "Requests refused with 429", ["service"], registry=REGISTRY
)
