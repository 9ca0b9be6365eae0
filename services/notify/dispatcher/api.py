"""The operators' routes on webhook deliveries: every attempt with its outcome, and re-driving
a parked delivery."""

from __future__ import annotations

from fastapi import APIRouter

from services.notify.deps import ContextDep, DeliveriesSnapshotDep, OperatorDep
from services.notify.dispatcher import handlers
from services.notify.dispatcher.repository import DispatcherRepository
from services.notify.dispatcher.schemas import (
    DeliveryId,
    DeliveryLimit,
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
    FilterText,
)
from services.notify.schemas import Cursor
from shared.web.openapi import AUTHENTICATED, problems

router = APIRouter(tags=["deliveries"])


@router.get("/v1/deliveries", response_model=DeliveryPage, responses=problems(*AUTHENTICATED))
async def list_deliveries(
    principal: OperatorDep,  # before the snapshot: a refused caller costs no transaction
    repo: DeliveriesSnapshotDep,
    application_id: FilterText = None,
    partner_id: FilterText = None,
    status: DeliveryStatus = None,
    cursor: Cursor = None,
    limit: DeliveryLimit = 100,
) -> DeliveryPage:
    """Webhook deliveries, newest first, each with every attempt and its outcome, a page at a
    time (`next_cursor` asks for the next)."""
    return await handlers.list_deliveries(
        repo, application_id=application_id, partner_id=partner_id, status=status, cursor=cursor, limit=limit
    )


@router.get("/v1/deliveries/{delivery_id}", response_model=DeliveryView, responses=problems(404, *AUTHENTICATED))
async def get_delivery(principal: OperatorDep, repo: DeliveriesSnapshotDep, delivery_id: DeliveryId) -> DeliveryView:
    return await handlers.get_delivery(repo, delivery_id)


@router.post(
    "/v1/deliveries/{delivery_id}/redrive", response_model=DeliveryView, responses=problems(404, 409, *AUTHENTICATED)
)
async def redrive_delivery(ctx: ContextDep, principal: OperatorDep, delivery_id: DeliveryId) -> DeliveryView:
    """Give a parked delivery a fresh round of attempts, now; recorded with who asked."""
    async with ctx.unit_of_work() as session:
        await handlers.redrive_delivery(DispatcherRepository(session), delivery_id, who=principal.who)
    async with ctx.snapshot() as session:
        return await handlers.get_delivery(DispatcherRepository(session), delivery_id)
