"""What notify's routes depend on: its typed service context and the role aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.notify.dispatcher.handlers import Dispatcher
from services.notify.finaliser.handlers import Finaliser
from shared.web.context import ServiceContext
from shared.web.deps import OperatorDep

__all__ = ["ContextDep", "NotifyContext", "OperatorDep", "notify_context"]


@dataclass
class NotifyContext(ServiceContext):
    # Both are started by the lifespan; None only before it has run.
    dispatcher: Dispatcher | None = None
    finaliser: Finaliser | None = None


def notify_context(request: Request) -> NotifyContext:
    ctx: NotifyContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[NotifyContext, Depends(notify_context)]
