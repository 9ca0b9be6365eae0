"""What notify's routes depend on: its typed service context."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.notify.dispatcher import Dispatcher, Finaliser
from shared.web.context import ServiceContext


@dataclass
class NotifyContext(ServiceContext):
    # Both are started by the lifespan; None only before it has run.
    dispatcher: Dispatcher | None = None
    finaliser: Finaliser | None = None


def notify_context(request: Request) -> NotifyContext:
    ctx: NotifyContext = request.app.state.ctx
    return ctx
