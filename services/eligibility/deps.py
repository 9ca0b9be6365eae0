"""What eligibility's routes depend on: its typed service context, the role aliases, snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.eligibility.policy.repository import PolicyRepository
from shared.web.context import ServiceContext
from shared.web.deps import AdminDep, PartnerOrOperatorDep, snapshot_of

__all__ = ["AdminDep", "ContextDep", "EligibilityContext", "PartnerOrOperatorDep", "PolicySnapshotDep",
           "eligibility_context"]


@dataclass
class EligibilityContext(ServiceContext):
    """Eligibility runs no workers beyond the shared consumer loop and outbox relay: it assesses
    in the consumer's transaction, and its routes read and write in their own."""


def eligibility_context(request: Request) -> EligibilityContext:
    ctx: EligibilityContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[EligibilityContext, Depends(eligibility_context)]
# Reads of the calls and catalog versions that see one snapshot (read-only).
PolicySnapshotDep = Annotated[PolicyRepository, snapshot_of(PolicyRepository)]
