"""Prometheus metrics every service exposes at /metrics: requests, consumer lag and batch
sizes, outbox backlog, dead letters (and webhook attempts, counted by notify)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from shared.service import ServiceContext

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


def instrument(app: FastAPI, service: str) -> None:
    app.add_middleware(CountRequests, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.ctx
        await _refresh_gauges(ctx)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """Requests by route template and status, as plain ASGI."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The route template, never the raw path: ids in paths would explode the label space.
            name = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], name, str(status)).inc()
            HTTP_SECONDS.labels(self.service, name).observe(time.perf_counter() - started)


async def _refresh_gauges(ctx: ServiceContext) -> None:
    try:
        async with ctx.maker() as session:
            backlog = await session.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        OUTBOX_BACKLOG.labels(ctx.name).set(float(backlog or 0))
    except Exception:
        OUTBOX_BACKLOG.labels(ctx.name).set(float("nan"))
    for loop in ctx.loops:
        CONSUMER_LAG.labels(ctx.name, loop.consumer_name).set(float(await loop.lag()))
