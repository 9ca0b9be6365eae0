"""What notify's routes depend on: its typed service context, the role aliases, snapshots, and
the limit on objections per client address."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.notify.dispatcher.handlers import Dispatcher
from services.notify.dispatcher.repository import DispatcherRepository
from services.notify.finaliser.handlers import Finaliser
from services.notify.objections.domain import OBJECTIONS_BURST, OBJECTIONS_PER_SECOND
from services.notify.objections.repository import SqlObjectionsRepository
from services.notify.repository import SqlNotifyRepository
from shared.kernel.errors import TooManyRequests
from shared.observability.metrics import RATE_LIMITED
from shared.web.context import ServiceContext
from shared.web.deps import OperatorDep, ReviewerDep, ReviewQueueReaderDep, service_context, snapshot_of
from shared.web.ratelimit import RateLimiter, retry_after_header

__all__ = [
    "ContextDep",
    "DeliveriesSnapshotDep",
    "NotifyContext",
    "ObjectionRateDep",
    "ObjectionsSnapshotDep",
    "OperatorDep",
    "ReviewQueueReaderDep",
    "ReviewerDep",
    "SnapshotDep",
    "limit_objections",
]


def _objection_limiter() -> RateLimiter:
    return RateLimiter(OBJECTIONS_PER_SECOND, OBJECTIONS_BURST)


@dataclass
class NotifyContext(ServiceContext):
    # Both are started by the lifespan; None only before it has run.
    dispatcher: Dispatcher | None = None
    finaliser: Finaliser | None = None
    # Objections per client address (public, no credential): a bucket per address, per instance.
    objection_limiter: RateLimiter = field(default_factory=_objection_limiter)


ContextDep = Annotated[NotifyContext, Depends(service_context)]
# Reads that see one snapshot of the database (read-only), closed as soon as the route returns.
SnapshotDep = Annotated[SqlNotifyRepository, snapshot_of(SqlNotifyRepository)]
DeliveriesSnapshotDep = Annotated[DispatcherRepository, snapshot_of(DispatcherRepository)]
ObjectionsSnapshotDep = Annotated[SqlObjectionsRepository, snapshot_of(SqlObjectionsRepository)]


def limit_objections(request: Request) -> None:
    """429 with Retry-After when this client address has filed too many objections lately. The
    address is the connection's (uvicorn takes it from X-Forwarded-For only behind a trusted
    proxy), so a client cannot pick a fresh one per request."""
    ctx: NotifyContext = request.app.state.ctx
    wait_s = ctx.objection_limiter.check(request.client.host if request.client else "unknown")
    if wait_s > 0:
        RATE_LIMITED.labels(ctx.name).inc()
        raise TooManyRequests(
            "too many objections from this address; try again later",
            headers={"Retry-After": retry_after_header(wait_s)},
        )


# Before the body is read and validated: a flood costs no parsing.
ObjectionRateDep = Annotated[None, Depends(limit_objections)]
