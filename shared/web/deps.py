"""The role vocabulary every service's routes use: one name, one set of roles, everywhere; the
running service's context (`service_context`); and the one way a route gets a repository on a
read-only snapshot (`snapshot_of`).

Services re-export these from their own `deps` module beside their context and session aliases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.auth import STAFF_ROLES, Principal, require
from shared.web.context import ServiceContext
from shared.web.edges import JSON_MEDIA, XML_MEDIA, body_media_type, require_media_type

R = TypeVar("R")

AdminDep = Annotated[Principal, Depends(require("admin"))]
OperatorDep = Annotated[Principal, Depends(require("operator"))]
ReviewerDep = Annotated[Principal, Depends(require("reviewer"))]
PaymentOfficerDep = Annotated[Principal, Depends(require("payment_officer"))]
AuditorDep = Annotated[Principal, Depends(require("auditor"))]
PartnerDep = Annotated[Principal, Depends(require("partner"))]
# Staff who may read what operators do: operators and auditors.
StaffReaderDep = Annotated[Principal, Depends(require("operator", "auditor"))]
# Partners (their own data only: the route filters) and staff of any role, who see everything.
PartnerOrStaffDep = Annotated[Principal, Depends(require("partner", *STAFF_ROLES))]
PartnerOrOperatorDep = Annotated[Principal, Depends(require("partner", "operator"))]
# Who may list the staff accounts: admins, and auditors (who read everything).
AdminOrAuditorDep = Annotated[Principal, Depends(require("admin", "auditor"))]
# Who may read the review queue and the objections: reviewers, operators, auditors.
ReviewQueueReaderDep = Annotated[Principal, Depends(require("reviewer", "operator", "auditor"))]


async def require_json_body(request: Request) -> None:
    """415 for a body that is not sent as exactly application/json (a UTF-8 charset at most).
    The edge checks this before the body is read for every route with a JSON body
    (shared.web.edges); as a dependency it says so in the route's signature."""
    require_media_type(request, JSON_MEDIA)


# A route whose body must be JSON: `_: JsonBodyDep`; XML: `_: XmlBodyDep`.
JsonBodyDep = Annotated[None, Depends(require_json_body)]
XmlBodyDep = Annotated[None, Depends(body_media_type(XML_MEDIA))]


def service_context(request: Request) -> ServiceContext:
    """The running service's context: `ContextDep = Annotated[XContext, Depends(service_context)]`
    in a service's deps, typed as its own subclass."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def snapshot_of(repository: Callable[[AsyncSession], R]) -> Any:
    """A dependency giving a route `repository(session)` on a read-only snapshot (`ctx.snapshot()`),
    closed as soon as the route returns: `Annotated[XRepository, snapshot_of(XRepository)]`."""

    async def open_snapshot(request: Request) -> AsyncIterator[R]:
        async with service_context(request).snapshot() as session:
            yield repository(session)

    return Depends(open_snapshot, scope="function")
