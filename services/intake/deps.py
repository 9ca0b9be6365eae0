"""What intake's routes depend on: its typed service context, the role aliases, a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.intake.policy.handlers import PolicyReplica
from services.intake.repository import IntakeRepository
from services.intake.submissions.handlers import GroupCommit
from shared.web.context import ServiceContext
from shared.web.deps import (
    AdminDep,
    AdminOrAuditorDep,
    JsonBodyDep,
    PartnerOrStaffDep,
    service_context,
    snapshot_of,
)

__all__ = [
    "AdminDep", "AdminOrAuditorDep", "ContextDep", "IntakeContext", "JsonBodyDep", "PartnerOrStaffDep", "SnapshotDep",
]


@dataclass
class IntakeContext(ServiceContext):
    # Set at start-up (they need the session maker, the engine, the relay); None only before the lifespan.
    submissions: GroupCommit | None = None
    policy: PolicyReplica | None = None


ContextDep = Annotated[IntakeContext, Depends(service_context)]
# Reads that see one snapshot of the database (read-only).
SnapshotDep = Annotated[IntakeRepository, snapshot_of(IntakeRepository)]
