"""The one way a Grantline service is assembled: settings, engine, producer, outbox relay,
consumer loops, problem+json, correlation ids, the edges (body limit, authentication before the
body, media types, security headers: shared.web.edges) and /healthz."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config.settings import Settings, get_settings
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.kernel.retry import Backoff
from shared.messaging.consumer import ConsumerLoop, Subscription
from shared.messaging.outbox import OutboxRelay
from shared.messaging.producer import make_producer
from shared.observability.logs import configure_logging, correlation_id
from shared.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS
from shared.web.asyncapi import asyncapi_router
from shared.web.auth import KeyCache
from shared.web.context import ServiceContext
from shared.web.deadletters import router as dead_letters_router
from shared.web.edges import (
    BodyReader,
    EdgeRefusal,
    RouteRules,
    body_ceiling,
    has_body,
    security_headers,
    too_large,
)
from shared.web.metrics import instrument
from shared.web.problems import add_exception_handlers, problem_response
from shared.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)


C = TypeVar("C", bound=ServiceContext)
SubscriptionsFactory = Callable[[C], Sequence[Subscription]]
StartHook = Callable[[C], Awaitable[list[asyncio.Task[Any]]]]


def create_service_app(
    name: str,
    context: type[C] = ServiceContext,  # type: ignore[assignment]
    *,
    routers: Sequence[APIRouter] = (),
    subscriptions: SubscriptionsFactory[C] = lambda ctx: (),
    on_start: StartHook[C] | None = None,
    settings: Settings | None = None,
    title: str | None = None,
    description: str = "",
) -> FastAPI:
    """The service `name`, its context a `context` (the service's typed subclass, holding its
    workers), its routes `routers`, its consumers `subscriptions(ctx)`, its own workers started
    by `on_start(ctx)`."""
    settings = settings or get_settings()
    configure_logging(name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError(f"{name}: DATABASE_URL is not set (no default: a service must not guess its database)")
        engine = make_engine(settings.database_url, schema=name)
        maker = make_sessionmaker(engine)
        producer = make_producer(settings.kafka_bootstrap_servers, client_id=f"grantline-{name}")
        relay = OutboxRelay(
            maker,
            producer,
            batch_max=settings.relay_batch_max,
            poll_seconds=settings.relay_poll_seconds,
            namespace=settings.topic_namespace,
            service=name,
            bootstrap=settings.kafka_bootstrap_servers,
            amnesia_check_seconds=settings.amnesia_check_seconds,
            redrive_window_seconds=settings.redrive_window_seconds,
            on_amnesia=lambda: _rewind_all(app.state.ctx),
        )
        ctx = context(name, settings, engine, maker, producer, relay)
        app.state.ctx = ctx
        for sub in subscriptions(ctx):
            ctx.loops.append(
                ConsumerLoop(
                    service=name,
                    subscription=sub,
                    maker=maker,
                    bootstrap=settings.kafka_bootstrap_servers,
                    on_commit=relay.wake,
                    batch_max=settings.consumer_batch_max,
                    namespace=settings.topic_namespace,
                    session_timeout_ms=settings.consumer_session_timeout_ms,
                )
            )
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(_start_broker_side(ctx), name=f"{name}-broker")]
        if on_start is not None:
            tasks += await on_start(ctx)
        # Everything built so far (modules, app, engine) lives as long as the process: out of the
        # collector's sight, full collections under load only walk what requests and batches make.
        gc.collect()
        gc.freeze()
        log.info("service started", extra={"port_hint": name})
        try:
            yield
        finally:
            # Drain: the service's own workers stop taking new work first, then the consumers
            # stop taking new batches, the current one commits and the outbox is flushed.
            for hook in ctx.stop_hooks:
                with suppress(Exception):
                    hook()
            for loop in ctx.loops:
                loop.stop()
            relay.stop()
            _done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            for task in pending:
                with suppress(BaseException):
                    await task
            with suppress(Exception):
                await producer.stop()
            await engine.dispose()

    app = FastAPI(title=title or f"Grantline {name}", description=description, lifespan=lifespan)
    add_exception_handlers(app)
    instrument(app)
    app.state.partner_limiter = RateLimiter(settings.partner_rate_per_second, settings.partner_burst)
    app.state.keys = KeyCache()  # this app's keys seen lately (shared.web.auth)

    docs_paths = [path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path]
    app.add_middleware(RequestEdge, service=name, body_max_bytes=settings.body_max_bytes, docs_paths=docs_paths)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        ctx: ServiceContext = request.app.state.ctx
        checks = {"database": "ok", "broker": "ok"}
        try:
            await asyncio.wait_for(ping(ctx.engine), timeout=2)
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if not ctx.broker_ready.is_set() or not await ctx.broker_health.check(ctx.producer):
            checks["broker"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    for router in routers:
        app.include_router(router)
    app.include_router(dead_letters_router)  # GET /v1/dead-letters, POST /v1/dead-letters/{id}/redrive
    app.include_router(asyncapi_router(name))  # GET /asyncapi.json (shared.web.asyncapi)
    return app


def _rewind_all(ctx: ServiceContext) -> None:
    for loop in ctx.loops:
        loop.rewind()


class RequestEdge:
    """Every request's way in, as one plain ASGI layer (no extra task per request): the
    correlation id in and out, the body limit while the body is read and the gate before it
    (shared.web.edges), the security headers, and the request metrics (a request refused for
    its declared size is not counted: it never reached a route)."""

    def __init__(self, app: ASGIApp, service: str, body_max_bytes: int, docs_paths: Sequence[str] = ()) -> None:
        self.app = app
        self.service = service
        self.body_max_bytes = body_max_bytes
        self.docs_paths = frozenset(docs_paths)
        self.rules = RouteRules()
        self.ceiling: int | None = None  # the largest body a route takes (shared.web.edges.body_ceiling)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cid = (headers.get("x-correlation-id") or str(uuid.uuid4()))[:128]
        token = correlation_id.set(cid)
        authenticated = "authorization" in headers or "cookie" in headers
        docs = scope["path"] in self.docs_paths
        try:
            if self.ceiling is None:
                self.ceiling = body_ceiling(scope.get("app"), self.body_max_bytes, self.rules)
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.ceiling:
                response = problem_response(too_large(self.ceiling))
                response.headers["Connection"] = "close"  # the body it announced is not read

                async def send_refusal(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        MutableHeaders(scope=message)["X-Correlation-Id"] = cid
                        security_headers(message, authenticated=authenticated, docs=docs)
                    await send(message)

                await response(scope, receive, send_refusal)
                return
            body = BodyReader(scope, receive, self.body_max_bytes, self.rules) if has_body(headers) else None
            started, status, responding = time.perf_counter(), 500, False

            async def send_with_id(message: Message) -> None:
                nonlocal status, responding
                if message["type"] == "http.response.start":
                    status, responding = message["status"], True
                    out = MutableHeaders(scope=message)
                    out["X-Correlation-Id"] = cid
                    if body is not None and not body.done:
                        # Answered before the body was read to its end (refused, or not wanted):
                        # close, rather than let the client go on sending what nobody reads.
                        out["Connection"] = "close"
                    security_headers(message, authenticated=authenticated, docs=docs)
                await send(message)

            try:
                await self.app(scope, body.receive if body is not None else receive, send_with_id)
            except EdgeRefusal as refusal:
                # Raised where no exception handler catches it (shared.web.problems renders it
                # everywhere else): answer it here unless an answer is already under way.
                if responding:
                    raise
                await problem_response(refusal.problem)(scope, receive, send_with_id)
            finally:
                # The route template, never the raw path: ids in paths would explode the label space.
                route = getattr(scope.get("route"), "path", "unmatched")
                HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
                HTTP_SECONDS.labels(self.service, route).observe(time.perf_counter() - started)
        finally:
            correlation_id.reset(token)


async def _start_broker_side(ctx: ServiceContext) -> None:
    """The broker may come up after the service: keep trying, then run relay and consumers."""
    backoff = Backoff(first_seconds=0.5, max_seconds=5.0)
    while True:
        try:
            await ctx.producer.start()
            break
        except Exception:
            log.warning("broker not reachable yet; retrying", exc_info=False)
            with suppress(Exception):
                await ctx.producer.stop()
            await backoff.sleep()
            ctx.producer = make_producer(
                ctx.settings.kafka_bootstrap_servers, client_id=f"grantline-{ctx.name}"
            )
            ctx.relay.producer = ctx.producer
    ctx.broker_ready.set()
    await asyncio.gather(ctx.relay.run(), *(loop.run() for loop in ctx.loops))
