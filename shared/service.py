"""The one way a Grantline service is assembled: settings, engine, producer, outbox relay,
consumer loops, problem+json, correlation ids, body limit and /healthz."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.bus import make_producer
from shared.consumer import ConsumerLoop, Subscription, per_event
from shared.db import make_engine, make_sessionmaker
from shared.deadletters import router as dead_letters_router
from shared.envelope import Event
from shared.errors import PayloadTooLarge, add_exception_handlers, problem_response
from shared.logs import configure_logging, correlation_id
from shared.metrics import instrument
from shared.outbox import OutboxRelay
from shared.ratelimit import RateLimiter
from shared.records import PartnerRecord
from shared.settings import Settings, get_settings
from shared.topics import PARTNERS

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    loops: list[ConsumerLoop] = field(default_factory=list)
    broker_ready: asyncio.Event = field(default_factory=asyncio.Event)
    extra: dict[str, Any] = field(default_factory=dict)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction for a command's state change and its outbox events; once it has
        committed, the relay is woken so the events leave at once instead of at the next poll."""
        async with self.maker() as session:
            async with session.begin():
                yield session
        self.relay.wake()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction on one snapshot, for answers assembled from several queries
        (an application and its timeline must not be read either side of a projection)."""
        async with self.maker() as session, session.begin():
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            yield session


async def apply_partner_registered(session: AsyncSession, event: Event) -> None:
    """Keep this service's replica of the partner directory (ids, names, key hashes)."""
    data = event.data
    missing = [
        k for k in ("partner_id", "name", "callback_url", "api_key_hash") if not isinstance(data.get(k), str)
    ]
    if missing:
        raise ValueError(f"malformed partner.registered: {', '.join(missing)} missing or not text")
    stmt = pg_insert(PartnerRecord).values(
        id=data["partner_id"],
        name=data["name"],
        callback_url=data["callback_url"],
        api_key_hash=data["api_key_hash"],
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def partner_directory_subscription(max_attempts: int = 3) -> Subscription:
    return Subscription(
        name="partners",
        topics=[PARTNERS],
        handle=per_event(apply_partner_registered, max_attempts),
        only_types=frozenset({"partner.registered"}),
    )


SubscriptionsFactory = Callable[[ServiceContext], Sequence[Subscription]]
StartHook = Callable[[ServiceContext], Awaitable[list[asyncio.Task[Any]]]]


def create_service_app(
    *,
    name: str,
    routers: Sequence[APIRouter] = (),
    subscriptions: SubscriptionsFactory = lambda ctx: (),
    on_start: StartHook | None = None,
    settings: Settings | None = None,
    title: str | None = None,
    description: str = "",
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
        ctx = ServiceContext(name, settings, engine, maker, producer, relay)
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
            # Drain: stop taking new batches, let the current one commit, flush the outbox.
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
    instrument(app, name)
    app.state.partner_limiter = RateLimiter(settings.partner_rate_per_s, settings.partner_burst)

    app.add_middleware(CorrelateAndLimit, max_body_bytes=settings.max_body_bytes)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        ctx: ServiceContext = request.app.state.ctx
        checks = {"database": "ok", "broker": "ok"}
        try:
            async with ctx.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if not ctx.broker_ready.is_set() or not await _broker_reachable(ctx):
            checks["broker"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    for router in routers:
        app.include_router(router)
    app.include_router(dead_letters_router)  # GET /v1/dead-letters, POST /v1/dead-letters/{id}/redrive
    return app


def _rewind_all(ctx: ServiceContext) -> None:
    for loop in ctx.loops:
        loop.rewind()


class CorrelateAndLimit:
    """Correlation id in and out, and the body limit, as plain ASGI (no extra task per request)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cid = (headers.get("x-correlation-id") or str(uuid.uuid4()))[:128]
        token = correlation_id.set(cid)
        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                response = problem_response(
                    PayloadTooLarge(f"request bodies are limited to {self.max_body_bytes} bytes")
                )
                await response(scope, receive, send)
                return

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message)["X-Correlation-Id"] = cid
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)


async def _broker_reachable(ctx: ServiceContext) -> bool:
    cached = ctx.extra.get("broker_checked")
    now = time.monotonic()
    if cached and now - cached[0] < 1.0:
        return bool(cached[1])
    try:
        await asyncio.wait_for(ctx.producer.client.fetch_all_metadata(), timeout=2)
        ok = True
    except Exception:
        ok = False
    ctx.extra["broker_checked"] = (now, ok)
    return ok


async def _start_broker_side(ctx: ServiceContext) -> None:
    """The broker may come up after the service: keep trying, then run relay and consumers."""
    backoff = 0.5
    while True:
        try:
            await ctx.producer.start()
            break
        except Exception:
            log.warning("broker not reachable yet; retrying", exc_info=False)
            with suppress(Exception):
                await ctx.producer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            ctx.producer = make_producer(
                ctx.settings.kafka_bootstrap_servers, client_id=f"grantline-{ctx.name}"
            )
            ctx.relay.producer = ctx.producer
    ctx.broker_ready.set()
    await asyncio.gather(ctx.relay.run(), *(loop.run() for loop in ctx.loops))
