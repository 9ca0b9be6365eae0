"""PUT /v1/applications/{id}/payee: the owning partner replaces the payee."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request

from services.intake.deps import ContextDep, JsonBodyDep
from services.intake.payees import handlers
from services.intake.payees.domain import PAYEE_SCHEMA, validate_payee
from services.intake.payees.repository import PayeeRepository
from services.intake.payees.schemas import PayeeReplaced
from shared.kernel.errors import MalformedJson, ValidationFailed
from shared.observability.logs import correlation_id
from shared.web.deps import PartnerDep
from shared.web.openapi import AUTHENTICATED, NO_NUL, problems

router = APIRouter(tags=["applications"])

ApplicationId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]

# The body is read and checked by hand (payees.domain), so its errors name the fields as the
# submission's do and never repeat an account number; this documents it.
_PUT_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": PAYEE_SCHEMA}}},
}


@router.put(
    "/v1/applications/{application_id}/payee",
    response_model=PayeeReplaced,
    openapi_extra=_PUT_DOC,
    responses=problems(400, 404, 409, 415, *AUTHENTICATED),
)
async def replace_payee(
    application_id: ApplicationId, request: Request, principal: PartnerDep, ctx: ContextDep, _: JsonBodyDep
) -> dict[str, Any]:
    """Replace the payee of one of the partner's applications while no payment for it is sent or
    settled (409 after); another partner's application is 404. The answer shows the account
    number masked. `payee.updated` follows on grantline.applications."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from exc
    payee, errors = validate_payee(body, at="")
    if payee is None:
        raise ValidationFailed("the payee has invalid fields", errors=errors)
    assert principal.partner_id is not None  # auth gives every partner principal its id
    async with ctx.unit_of_work() as session:
        return await handlers.replace_payee(
            PayeeRepository(session), application_id, partner_id=principal.partner_id, payee=payee,
            now=datetime.now(UTC), correlation=correlation_id.get(),
        )
