"""Intake's HTTP routes: translate HTTP into handler calls and nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from services.intake import handlers
from services.intake.deps import (
    AdminDep,
    ContextDep,
    IntakeContext,
    JsonBodyDep,
    PartnerOrStaffDep,
    SnapshotDep,
)
from services.intake.domain import request_fingerprint
from services.intake.payees.domain import PAYEE_SCHEMA, Payee, validate_payee
from services.intake.policy.domain import PolicyView, admit
from services.intake.repository import IntakeRepository
from services.intake.schemas import ApplicationAccepted, PartnerCreate, PartnerCreated
from services.intake.submissions.handlers import prepare_submission
from shared.kernel.errors import (
    Conflict,
    FieldProblem,
    MalformedJson,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.observability.logs import correlation_id
from shared.web.auth import authorize
from shared.web.openapi import APPLICATION_BODY, AUTHENTICATED, NO_NUL, PUBLIC, problems
from shared.web.ssrf import UnsafeCallback, check_callback_url

router = APIRouter()

ApplicationId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]


def _require_json(request: Request, what: str) -> None:
    """415 for a body that is not JSON (pydantic would otherwise report it as a 422)."""
    if "json" not in request.headers.get("content-type", "application/json"):
        raise UnsupportedMediaType(f"send {what} as application/json")


def _policy(ctx: IntakeContext) -> PolicyView:
    view = ctx.policy.view if ctx.policy is not None else None
    if view is None:  # only in the moments after start, before the replica is first read
        raise Unavailable("the policy is not loaded yet; retry", headers={"Retry-After": "1"})
    return view


@router.post(
    "/v1/partners",
    status_code=201,
    response_model=PartnerCreated,
    tags=["partners"],
    responses=problems(400, 415, *AUTHENTICATED),
)
async def create_partner(
    body: PartnerCreate, principal: AdminDep, ctx: ContextDep, _: JsonBodyDep
) -> dict[str, str]:
    try:
        await check_callback_url(body.callback_url, allow_private=ctx.settings.allow_private_callbacks)
    except UnsafeCallback as exc:
        raise ValidationFailed(
            "the callback URL is not allowed", errors=[FieldProblem("callback_url", str(exc))]
        ) from exc
    async with ctx.unit_of_work() as session:
        return await handlers.register_partner(
            IntakeRepository(session),
            name=body.name,
            callback_url=body.callback_url,
            signing_key=ctx.settings.webhook_signing_key,
            by=principal,
            correlation=correlation_id.get(),
        )


def _with_payee(doc: dict[str, Any]) -> dict[str, Any]:
    """The application body's schema with the optional `payee` (intake's, checked apart from the
    application: services.intake.payees)."""
    schema = doc["requestBody"]["content"]["application/json"]["schema"]
    shown = {**schema, "properties": {**schema["properties"], "payee": PAYEE_SCHEMA}}
    return {"requestBody": {**doc["requestBody"], "content": {"application/json": {"schema": shown}}}}


def _split_payee(body: object) -> tuple[object, Payee | None, list[FieldProblem]]:
    """The application without its `payee`, the payee (None when absent or null) and its problems."""
    if not isinstance(body, dict) or "payee" not in body:
        return body, None, []  # the hot path: no copy
    rest = {k: v for k, v in body.items() if k != "payee"}
    if body["payee"] is None:
        return rest, None, []
    payee, errors = validate_payee(body["payee"])
    return rest, payee, errors


_SUBMIT_DOC: dict[str, Any] = {
    **_with_payee(APPLICATION_BODY),
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": True,
        "description": "the partner's key for this application: a retry with the same key and body gets the "
                       "first answer; another body, 409",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }],
}


@router.post(
    "/v1/applications",
    status_code=202,
    response_model=ApplicationAccepted,
    tags=["applications"],
    openapi_extra=_SUBMIT_DOC,
    responses=problems(400, 409, 415, *AUTHENTICATED),
)
async def submit_application(request: Request) -> Response:
    # The hot path: parameters are read by hand rather than through FastAPI dependencies and
    # Header(), whose per-request resolution cost more than the rest of this route (they are
    # documented in _SUBMIT_DOC instead).
    principal = await authorize(request, "partner")
    idempotency_key = request.headers.get("idempotency-key")
    ctx: IntakeContext = request.app.state.ctx
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationFailed(
            "an Idempotency-Key header is required",
            errors=[FieldProblem("Idempotency-Key", "required header, 1 to 200 characters")],
        )
    _require_json(request, "the application")
    raw = await request.body()
    if len(raw) > ctx.settings.body_max_bytes:
        raise PayloadTooLarge(f"request bodies are limited to {ctx.settings.body_max_bytes} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from exc
    received_at = datetime.now(UTC)
    application_body, payee, payee_errors = _split_payee(body)
    admitted = admit(_policy(ctx), application_body, received_at)
    application, call, catalog = admitted.application, admitted.call, admitted.catalog
    errors = [*admitted.errors, *payee_errors]
    fingerprint = request_fingerprint(body)
    assert principal.partner_id is not None
    if errors or application is None or call is None or catalog is None:
        # A retry of an application accepted before its call closed gets its first answer again.
        replayed = await _stored_reply(ctx, principal.partner_id, idempotency_key, fingerprint, conflict=False)
        if replayed is not None:
            return replayed
        if errors or call is None:
            raise ValidationFailed(
                "the application has invalid fields",
                errors=errors,
            )
        raise Unavailable(
            f"call {call.terms.id}'s catalog version is not here yet; retry", headers={"Retry-After": "1"}
        )
    submission = prepare_submission(
        partner_id=principal.partner_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        application=application,
        catalog=catalog,
        call_id=call.terms.id,
        received_at=received_at,
        correlation=correlation_id.get(),
        payee=payee,
    )
    assert ctx.submissions is not None  # set by the lifespan before any request
    if await ctx.submissions.submit(submission):
        return Response(submission.response, status_code=202, media_type="application/json")
    replayed = await _stored_reply(ctx, principal.partner_id, idempotency_key, fingerprint)
    if replayed is None:  # pragma: no cover - the conflicting insert committed, so the row exists
        raise Conflict("the idempotency key is in use; retry")
    return replayed


async def _stored_reply(
    ctx: IntakeContext, partner_id: str, idempotency_key: str, fingerprint: str, *, conflict: bool = True
) -> Response | None:
    """The first answer given under this key when the same body was sent with it; None when the
    key is unused, or (unless `conflict`, then 409) used with another body."""
    async with ctx.maker() as session:
        stored = await IntakeRepository(session).find_reply(partner_id, idempotency_key)
    if stored is None or (stored.request_hash != fingerprint and not conflict):
        return None
    if stored.request_hash != fingerprint:
        raise Conflict("this Idempotency-Key was already used with a different body")
    return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})


@router.get("/v1/applications/{application_id}", tags=["applications"], responses=problems(404, *AUTHENTICATED))
async def get_application(
    application_id: ApplicationId, principal: PartnerOrStaffDep, repo: SnapshotDep
) -> dict[str, Any]:
    return await handlers.get_application(repo, application_id, principal)


@router.get(
    "/v1/applications/{application_id}/events", tags=["applications"], responses=problems(404, *AUTHENTICATED)
)
async def get_application_events(
    application_id: ApplicationId, principal: PartnerOrStaffDep, repo: SnapshotDep
) -> dict[str, Any]:
    """Every event that touched this application, across services, in order, as full envelopes."""
    events = await handlers.get_application_events(repo, application_id, principal)
    return {"application_id": application_id, "items": events}


@router.get("/v1/applications", tags=["applications"], responses=problems(*AUTHENTICATED))
async def list_applications(
    principal: PartnerOrStaffDep,
    repo: SnapshotDep,
    status: Literal[
        "received", "ineligible", "pending_review", "approved", "partially_approved", "rejected", "revoked"
    ]
    | None = None,
    program: Annotated[str | None, Query(max_length=40, pattern=NO_NUL)] = None,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return await handlers.list_applications(repo, principal, status=status, program=program, cursor=cursor, limit=limit)


@router.get("/v1/programs", tags=["programs"], responses=problems(*PUBLIC))
async def list_programs(ctx: ContextDep) -> dict[str, Any]:
    """The latest catalog version's programs, each with the calls open for it now."""
    return _policy(ctx).programs_listing(datetime.now(UTC))
