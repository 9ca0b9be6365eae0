"""What intake's routes depend on: its typed service context."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.intake.submissions import GroupCommit
from shared.web.context import ServiceContext


@dataclass
class IntakeContext(ServiceContext):
    # Set at start-up (it needs the session maker and the relay); None only before the lifespan.
    submissions: GroupCommit | None = None


def intake_context(request: Request) -> IntakeContext:
    ctx: IntakeContext = request.app.state.ctx
    return ctx
