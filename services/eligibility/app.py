"""Eligibility: turns `application.received` into `application.assessed` with a receipt."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.eligibility.api import router
from services.eligibility.deps import EligibilityContext
from services.eligibility.handlers import assess_batch
from shared.config.settings import Settings
from shared.contracts.topics import APPLICATIONS
from shared.messaging.consumer import Subscription, batch_or_each
from shared.messaging.directory import partner_directory_subscription
from shared.web.app import create_service_app


def subscriptions(ctx: EligibilityContext) -> Sequence[Subscription]:
    return [
        Subscription(
            name="assess",
            topics=[APPLICATIONS],
            handle=batch_or_each(assess_batch, ctx.settings.consumer_attempts_max),
            only_types=frozenset({"application.received"}),
        ),
        partner_directory_subscription(ctx.settings.consumer_attempts_max),
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings,
        name="eligibility",
        routers=[router],
        subscriptions=subscriptions,
        context=EligibilityContext,
        description="Assesses applications against the policy catalog, every rule with its citation.",
    )


app = create_app()
