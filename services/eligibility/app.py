"""Eligibility: turns `application.received` into `application.assessed` with a receipt, and
keeps the policy it assesses under (catalog versions, calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from services.eligibility.api import router
from services.eligibility.deps import EligibilityContext
from services.eligibility.handlers import assess_batch
from services.eligibility.policy.api import router as policy_router
from services.eligibility.policy.handlers import publish_shipped_catalog
from services.eligibility.policy.repository import PolicyRepository
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


async def publish_shipped(ctx: EligibilityContext) -> list[asyncio.Task[Any]]:
    """The catalog shipped with the code is a published version before any route answers."""
    async with ctx.unit_of_work() as session:
        await publish_shipped_catalog(PolicyRepository(session))
    return []


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "eligibility", EligibilityContext, routers=[router, policy_router], subscriptions=subscriptions,
        on_start=publish_shipped, settings=settings,
        description="Assesses applications against the policy catalog, every rule with its citation; publishes "
                    "catalog versions and opens calls for applications.",
    )


app = create_app()
