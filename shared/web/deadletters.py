"""GET /v1/dead-letters and POST /v1/dead-letters/{id}/redrive, the same in every service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from shared.kernel.cursors import page_after, parse_seq
from shared.messaging.deadletters import CURSOR_TAG, get_dead_letter, list_dead_letters, redrive_dead_letter
from shared.web.actions import ReasonBody
from shared.web.deps import JsonBodyDep, OperatorDep, StaffReaderDep
from shared.web.openapi import AUTHENTICATED, NO_NUL, problems


class Redrive(BaseModel):
    by: str
    by_name: str | None = Field(description="the staff member's name; null for the bootstrap operator")
    reason: str
    at: str | None
    event_id: str


class DeadLetterItem(BaseModel):
    id: str
    consumer: str | None
    topic: str | None
    partition: int | None
    offset: int | None
    key: str | None
    error: str | None
    original_event_id: str | None = Field(description="null when the original message is not an envelope")
    original_event_type: str | None
    dead_lettered_at: str | None
    redrive: Redrive | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterItem]
    next_cursor: str | None


router = APIRouter(tags=["dead letters"])


@router.get("/v1/dead-letters", response_model=DeadLetterPage, responses=problems(*AUTHENTICATED))
async def list_dead_letters_route(
    request: Request,
    _: StaffReaderDep,
    consumer: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """This service's dead letters, newest first, each with its re-drive if it had one."""
    before = page_after(cursor or None, CURSOR_TAG, parse_seq)
    async with request.app.state.ctx.maker() as session:
        return await list_dead_letters(session, consumer=consumer, before=before, limit=limit)


@router.post(
    "/v1/dead-letters/{dead_letter_id}/redrive",
    status_code=202,
    response_model=DeadLetterItem,
    responses=problems(400, 404, 409, 415, *AUTHENTICATED),
)
async def redrive_dead_letter_route(
    request: Request,
    dead_letter_id: uuid.UUID,
    body: ReasonBody,
    principal: OperatorDep,
    _: JsonBodyDep,
) -> dict[str, Any]:
    """Put the parked event back on its topic for its consumer to apply once more; recorded with
    who and why. A dead letter is re-driven at most once; a message that is not an envelope never."""
    ctx = request.app.state.ctx
    async with ctx.unit_of_work() as session:
        await redrive_dead_letter(
            session,
            dead_letter_id,
            who=principal.who,
            reason=body.reason,
            namespace=ctx.settings.topic_namespace,
        )
    async with ctx.maker() as session:
        view = await get_dead_letter(session, dead_letter_id)
    assert view is not None and view["redrive"] is not None  # committed just now
    return view
