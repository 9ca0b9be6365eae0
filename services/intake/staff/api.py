"""The staff accounts' routes: POST /v1/staff, GET /v1/staff, POST /v1/staff/{id}/deactivate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.intake.deps import AdminDep, AdminOrAuditorDep, ContextDep, JsonBodyDep
from services.intake.staff import handlers
from services.intake.staff.repository import StaffRepository
from services.intake.staff.schemas import StaffCreate, StaffCreated, StaffPage, StaffView
from shared.observability.logs import correlation_id
from shared.web.actions import ReasonBody
from shared.web.deps import snapshot_of
from shared.web.openapi import AUTHENTICATED, NO_NUL, problems

router = APIRouter(tags=["staff"])

StaffId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]
SnapshotDep = Annotated[StaffRepository, snapshot_of(StaffRepository)]


@router.post("/v1/staff", status_code=201, response_model=StaffCreated, responses=problems(400, 415, *AUTHENTICATED))
async def create_staff(body: StaffCreate, principal: AdminDep, ctx: ContextDep, _: JsonBodyDep) -> dict[str, Any]:
    """Register a staff member with roles; the answer holds the key, shown this once."""
    async with ctx.unit_of_work() as session:
        return await handlers.register_staff(
            StaffRepository(session), name=body.name, roles=body.roles, by=principal, now=datetime.now(UTC),
            correlation=correlation_id.get(),
        )


@router.get("/v1/staff", response_model=StaffPage, response_model_exclude_unset=True, responses=problems(*AUTHENTICATED))
async def list_staff(
    _: AdminOrAuditorDep,
    repo: SnapshotDep,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The staff accounts, newest first (never a key nor its hash)."""
    return await handlers.list_staff(repo, cursor=cursor, limit=limit)


@router.post(
    "/v1/staff/{staff_id}/deactivate", response_model=StaffView, response_model_exclude_unset=True,
    responses=problems(400, 404, 415, *AUTHENTICATED),
)
async def deactivate_staff(
    staff_id: StaffId, body: ReasonBody, principal: AdminDep, ctx: ContextDep, _: JsonBodyDep
) -> dict[str, Any]:
    """The member's key stops working in every service within seconds. Deactivating again
    changes nothing and answers the account as it stands."""
    async with ctx.unit_of_work() as session:
        return await handlers.deactivate_staff(
            StaffRepository(session), staff_id, reason=body.reason, by=principal, now=datetime.now(UTC),
            correlation=correlation_id.get(),
        )
