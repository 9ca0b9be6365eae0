"""What eligibility's routes depend on: its typed service context, the role aliases, snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.eligibility.policy.repository import PolicyRepository
from shared.web.context import ServiceContext
from shared.web.deps import AdminDep, PartnerOrOperatorDep, service_context, snapshot_of

__all__ = ["AdminDep", "ContextDep", "EligibilityContext", "PartnerOrOperatorDep", "PolicySnapshotDep"]


@dataclass
class EligibilityContext(ServiceContext):
    """Eligibility runs no workers beyond the shared consumer loop and outbox relay: it assesses
    in the consumer's transaction, and its routes read and write in their own."""


ContextDep = Annotated[EligibilityContext, Depends(service_context)]
# Reads of the calls and catalog versions that see one snapshot (read-only).
PolicySnapshotDep = Annotated[PolicyRepository, snapshot_of(PolicyRepository)]
