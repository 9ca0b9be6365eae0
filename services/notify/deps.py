"""What notify's routes depend on: its typed service context, the role aliases, snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.notify.dispatcher.handlers import Dispatcher
from services.notify.dispatcher.repository import DispatcherRepository
from services.notify.finaliser.handlers import Finaliser
from services.notify.repository import SqlNotifyRepository
from shared.web.context import ServiceContext
from shared.web.deps import OperatorDep, service_context, snapshot_of

__all__ = ["ContextDep", "DeliveriesSnapshotDep", "NotifyContext", "OperatorDep", "SnapshotDep"]


@dataclass
class NotifyContext(ServiceContext):
    # Both are started by the lifespan; None only before it has run.
    dispatcher: Dispatcher | None = None
    finaliser: Finaliser | None = None


ContextDep = Annotated[NotifyContext, Depends(service_context)]
# Reads that see one snapshot of the database (read-only), closed as soon as the route returns.
SnapshotDep = Annotated[SqlNotifyRepository, snapshot_of(SqlNotifyRepository)]
DeliveriesSnapshotDep = Annotated[DispatcherRepository, snapshot_of(DispatcherRepository)]
