"""What eligibility's routes depend on: its typed service context and the role aliases."""

from __future__ import annotations

from dataclasses import dataclass

from shared.web.context import ServiceContext
from shared.web.deps import PartnerOrOperatorDep

__all__ = ["EligibilityContext", "PartnerOrOperatorDep"]


@dataclass
class EligibilityContext(ServiceContext):
    """Eligibility runs no workers beyond the shared consumer loop and outbox relay: it assesses
    in the consumer's transaction, and its routes read nothing from the database."""
