"""Intake: partners post applications here; it projects downstream events into their status."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from services.intake.api import router
from services.intake.deps import IntakeContext
from services.intake.domain import DOWNSTREAM
from services.intake.handlers import record_downstream_batch
from services.intake.payees.api import router as payee_router
from services.intake.policy.handlers import PolicyReplica, policy_subscription
from services.intake.staff.api import router as staff_router
from services.intake.submissions.handlers import GroupCommit
from shared.config.settings import Settings
from shared.contracts.topics import ANNOUNCEMENTS, ASSESSMENTS, AWARDS, PAYMENTS
from shared.messaging.consumer import Subscription, batch_or_each
from shared.web.app import create_service_app


def subscriptions(ctx: IntakeContext) -> Sequence[Subscription]:
    return [
        Subscription(
            name="status",
            topics=[ASSESSMENTS, AWARDS, ANNOUNCEMENTS, PAYMENTS],
            handle=batch_or_each(record_downstream_batch, ctx.settings.consumer_attempts_max),
            only_types=frozenset(DOWNSTREAM),
        ),
        policy_subscription(ctx.settings.consumer_attempts_max),
    ]


async def start_workers(ctx: IntakeContext) -> list[asyncio.Task[Any]]:
    ctx.submissions = GroupCommit(ctx.maker, on_commit=ctx.relay.wake)
    ctx.policy = PolicyReplica(ctx.maker, ctx.engine)
    ctx.on_stop(ctx.policy.stop)
    return [asyncio.create_task(ctx.policy.run(), name="intake-policy-replica")]


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "intake", IntakeContext, routers=[router, payee_router, staff_router], subscriptions=subscriptions, on_start=start_workers,
        settings=settings, description="Partner-facing API: register partners, submit applications, follow their status.",
    )


app = create_app()
