"""Notify: signed webhooks with retries, the public announcement (公示) and finalisation.

Consumers only write rows (deliveries, announcements, outbox events); a dispatcher task
sends webhooks from the deliveries table and a finaliser task ends notice periods. Objections
(异议) are filed and resolved through routes, each in one transaction with its events. Both run
on every instance and share the work through row locks (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from services.notify import api
from services.notify.dashboard import api as dashboard_api
from services.notify.deps import NotifyContext
from services.notify.dispatcher import api as deliveries_api
from services.notify.dispatcher.handlers import Dispatcher
from services.notify.finaliser.handlers import Finaliser
from services.notify.handlers import (
    CALL_TYPES,
    PAYMENT_STEPS,
    handle_payment_batch,
    make_award_batch_handler,
    record_call_opened,
)
from services.notify.objections import api as objections_api
from services.notify.transparency import api as transparency_api
from shared.config.settings import Settings
from shared.contracts.topics import AWARDS, PAYMENTS, POLICY
from shared.messaging.consumer import Subscription, batch_or_each, per_event
from shared.messaging.directory import partner_directory_subscription
from shared.web.app import create_service_app
from shared.web.context import ServiceContext


def subscriptions(ctx: ServiceContext) -> Sequence[Subscription]:
    notice_period_seconds = ctx.settings.notice_period_seconds
    return [
        Subscription(
            name="awards",
            topics=[AWARDS],
            # Set-based for the batch; one event at a time only if the batch statement fails.
            handle=batch_or_each(make_award_batch_handler(notice_period_seconds), ctx.settings.consumer_attempts_max),
            only_types=frozenset({"award.decided", "award.reviewed", "award.revoked"}),
        ),
        Subscription(
            name="payments",
            topics=[PAYMENTS],
            handle=batch_or_each(handle_payment_batch, ctx.settings.consumer_attempts_max),
            only_types=frozenset(PAYMENT_STEPS),
        ),
        # The calls' titles for the 公示 page's groups (a replica; intake keeps its own).
        Subscription(
            name="policy",
            topics=[POLICY],
            handle=per_event(record_call_opened, ctx.settings.consumer_attempts_max),
            only_types=CALL_TYPES,
        ),
        partner_directory_subscription(ctx.settings.consumer_attempts_max),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    webhook_timeout: float = 5.0,
    global_concurrency: int = 32,
    per_partner_concurrency: int = 4,
) -> FastAPI:
    async def on_start(ctx: NotifyContext) -> list[asyncio.Task[Any]]:
        dispatcher = Dispatcher(
            ctx.maker,
            ctx.settings,
            timeout_s=webhook_timeout,
            global_concurrency=global_concurrency,
            per_partner_concurrency=per_partner_concurrency,
        )
        finaliser = Finaliser(ctx.maker, on_commit=ctx.relay.wake)
        ctx.dispatcher, ctx.finaliser = dispatcher, finaliser
        # Stopped before the plumbing drains, so shutdown does not wait for their timeouts.
        ctx.on_stop(dispatcher.stop)
        ctx.on_stop(finaliser.stop)
        return [
            asyncio.create_task(dispatcher.run(), name="notify-dispatcher"),
            asyncio.create_task(finaliser.run(), name="notify-finaliser"),
        ]

    return create_service_app(
        "notify", NotifyContext, routers=[api.router, objections_api.router, deliveries_api.router, dashboard_api.router,
                           transparency_api.router], subscriptions=subscriptions,
        on_start=on_start, settings=settings,
        description="Signed partner webhooks with retries, the public announcement (公示) and finalisation.",
    )


app = create_app()
