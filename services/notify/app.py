"""Notify: signed webhooks with retries, the public announcement (公示) and finalisation.

Consumers only write rows (deliveries, announcements, outbox events); a dispatcher task
sends webhooks from the deliveries table and a finaliser task ends notice periods. Both run
on every instance and share the work through row locks (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI

from services.notify.api import router
from services.notify.dispatcher import Dispatcher, Finaliser
from services.notify.handlers import make_award_batch_handler
from shared.consumer import Subscription, batch_or_each
from shared.service import ServiceContext, create_service_app, partner_directory_subscription
from shared.settings import Settings, get_settings
from shared.topics import AWARDS


def subscriptions(ctx: ServiceContext) -> Sequence[Subscription]:
    notice_period = ctx.settings.notice_period
    return [
        Subscription(
            name="awards",
            topics=[AWARDS],
            # Set-based for the batch; one event at a time only if the batch statement fails.
            handle=batch_or_each(make_award_batch_handler(notice_period), ctx.settings.consumer_max_attempts),
            only_types=frozenset({"award.decided", "award.revoked"}),
        ),
        partner_directory_subscription(ctx.settings.consumer_max_attempts),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    webhook_timeout: float = 5.0,
    global_concurrency: int = 32,
    per_partner_concurrency: int = 4,
) -> FastAPI:
    settings = settings or get_settings()

    async def on_start(ctx: ServiceContext) -> list[asyncio.Task[Any]]:
        dispatcher = Dispatcher(
            ctx.maker,
            ctx.settings,
            timeout_s=webhook_timeout,
            global_concurrency=global_concurrency,
            per_partner_concurrency=per_partner_concurrency,
        )
        finaliser = Finaliser(ctx.maker, on_commit=ctx.relay.wake)
        ctx.extra["dispatcher"] = dispatcher
        ctx.extra["finaliser"] = finaliser
        return [
            asyncio.create_task(dispatcher.run(), name="notify-dispatcher"),
            asyncio.create_task(finaliser.run(), name="notify-finaliser"),
        ]

    app = create_service_app(
        settings=settings,
        name="notify",
        routers=[router],
        subscriptions=subscriptions,
        on_start=on_start,
        description="Signed partner webhooks with retries, the public announcement (公示) and finalisation.",
    )

    # The plumbing's lifespan drains consumers and the relay; ours stops the dispatcher and the
    # finaliser first (wrapping, not forking, it), so shutdown does not wait for its timeout.
    plumbing_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with plumbing_lifespan(app) as state:
            try:
                yield state
            finally:
                ctx: ServiceContext | None = getattr(app.state, "ctx", None)
                if ctx is not None:
                    for name in ("dispatcher", "finaliser"):
                        worker = ctx.extra.get(name)
                        if worker is not None:
                            with suppress(Exception):
                                worker.stop()

    app.router.lifespan_context = lifespan
    return app


app = create_app()
