"""Notify: signed webhooks, the public announcement (公示) and finalisation.

Its business logic lands with the notify issue; today it keeps the partner directory
replica that webhooks will need, on the shared plumbing.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from shared.consumer import Subscription
from shared.service import ServiceContext, create_service_app, partner_directory_subscription
from shared.settings import Settings


def subscriptions(ctx: ServiceContext) -> Sequence[Subscription]:
    return [partner_directory_subscription(ctx.settings.consumer_max_attempts)]


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings, name="notify", subscriptions=subscriptions, description="Webhooks and 公示."
    )


app = create_app()
