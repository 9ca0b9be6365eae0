"""Ledger: decides awards against pools and the overlap rule; holds and reviews, journal, revocation, audit."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.ledger.api import router
from services.ledger.dashboard.api import router as dashboard_router
from services.ledger.deps import LedgerContext
from services.ledger.exports.api import router as exports_router
from services.ledger.handlers import decide_awards, revoke_on_upheld_objection
from services.ledger.payments.api import router as payments_router
from services.ledger.payments.handlers import keep_payee, order_payment
from services.ledger.reviews.api import router as reviews_router
from shared.config.settings import Settings
from shared.contracts.topics import ANNOUNCEMENTS, APPLICATIONS, ASSESSMENTS
from shared.messaging.consumer import Subscription, per_event
from shared.messaging.directory import partner_directory_subscription
from shared.web.app import create_service_app


def decide_subscription() -> Subscription:
    return Subscription(
        name="decide",
        topics=[ASSESSMENTS],
        handle=decide_awards,
        only_types=frozenset({"application.assessed"}),
    )


def objections_subscription(attempts_max: int) -> Subscription:
    """An objection upheld during the 公示 revokes the award (notify publishes the resolution)."""
    return Subscription(
        name="objections",
        topics=[ANNOUNCEMENTS],
        handle=per_event(revoke_on_upheld_objection, attempts_max),
        only_types=frozenset({"objection.resolved"}),
    )


def payees_subscription(attempts_max: int) -> Subscription:
    """Where each application is paid (services.ledger.payments): its payee on receipt, and updates."""
    return Subscription(
        name="payees",
        topics=[APPLICATIONS],
        handle=per_event(keep_payee, attempts_max),
        only_types=frozenset({"application.received", "payee.updated"}),
    )


def finalized_subscription(attempts_max: int) -> Subscription:
    """A finalized award is posted and ordered for payment (services.ledger.payments)."""
    return Subscription(
        name="payments",
        topics=[ANNOUNCEMENTS],
        handle=per_event(order_payment, attempts_max),
        only_types=frozenset({"award.finalized"}),
    )


def subscriptions(ctx: LedgerContext) -> Sequence[Subscription]:
    attempts = ctx.settings.consumer_attempts_max
    return [decide_subscription(), partner_directory_subscription(attempts), objections_subscription(attempts),
            payees_subscription(attempts), finalized_subscription(attempts)]


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "ledger", LedgerContext, routers=[router, reviews_router, payments_router, exports_router, dashboard_router], subscriptions=subscriptions, settings=settings,
        description="Decides awards against caps and the overlap rule, holds awards for review (核定); "
                    "double-entry, hash-chained journal.",
    )


app = create_app()
