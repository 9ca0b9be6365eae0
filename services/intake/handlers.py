"""What intake does with each command and each downstream event: thin, over the repository and
the domain. (Submitting an application is services.intake.submissions.)"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import (
    DOWNSTREAM,
    SOURCE,
    ApplicationState,
    Downstream,
    for_timeline,
    project,
    public_view,
)
from services.intake.repository import IntakeRepository
from shared.contracts.envelope import Event
from shared.contracts.events import Actor, PartnerRegistered, new_typed_event, parse_data
from shared.kernel.cursors import next_page, page_after, parse_seq
from shared.kernel.errors import NotFound
from shared.messaging.consumer import DeadLetter
from shared.web.auth import Principal, hash_secret, new_api_key, webhook_secret_for

CURSOR_TAG = "s"  # the applications list


def _reveals_accounts(principal: Principal) -> bool:
    """Payment officers see account numbers in full; everyone else (the partner too) masked."""
    return "payment_officer" in principal.roles


def _viewer(principal: Principal) -> str | None:
    """The partner whose applications `principal` may see; None for staff, who see all."""
    if not principal.is_partner:
        return None
    assert principal.partner_id is not None  # auth gives every partner principal its id
    return principal.partner_id


async def register_partner(
    repo: IntakeRepository, *, name: str, callback_url: str, signing_key: str, by: Principal, correlation: str | None
) -> dict[str, str]:
    partner_id = "ptn_" + uuid.uuid4().hex[:20]
    api_key = new_api_key()
    key_hash = hash_secret(api_key)
    await repo.add_partner(partner_id, name=name, callback_url=callback_url, api_key_hash=key_hash)
    event = new_typed_event(
        PartnerRegistered(partner_id=partner_id, name=name, callback_url=callback_url, api_key_hash=key_hash,
                          registered_by=Actor(**by.actor)),
        source=SOURCE,
        subject=partner_id,
        correlation_id=correlation,
    )
    await repo.add_events([(event, partner_id)])
    return {
        "id": partner_id,
        "name": name,
        "callback_url": callback_url,
        "api_key": api_key,
        "webhook_secret": webhook_secret_for(partner_id, signing_key),
    }


def _not_visible(app_id: str) -> NotFound:
    # The same answer for an application that does not exist and one of another partner.
    return NotFound(f"no application {app_id!r} visible to you")


async def get_application(repo: IntakeRepository, app_id: str, principal: Principal) -> dict[str, Any]:
    app = await repo.find_application(app_id, _viewer(principal))
    if app is None:
        raise _not_visible(app_id)
    return public_view(app, await repo.timeline(app_id), reveal_accounts=_reveals_accounts(principal))


async def get_application_events(repo: IntakeRepository, app_id: str, principal: Principal) -> list[dict[str, Any]]:
    """Every event that touched the application, across services, in timeline order, as full envelopes:
    intake's own from its outbox, downstream ones as consumed."""
    if not await repo.is_visible(app_id, _viewer(principal)):
        raise _not_visible(app_id)
    reveal = _reveals_accounts(principal)
    return [item.as_envelope(app_id, reveal_accounts=reveal) for item in await repo.timeline(app_id, envelopes=True)]


async def list_applications(
    repo: IntakeRepository,
    principal: Principal,
    *,
    status: str | None,
    program: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """A page of the applications the principal may see, newest first."""
    before = page_after(cursor or None, CURSOR_TAG, parse_seq)
    apps = await repo.list_applications(
        _viewer(principal), status=status, program=program, before=before, limit=limit + 1
    )
    page, next_cursor = next_page(apps, limit, CURSOR_TAG, lambda a: a.seq)
    reveal = _reveals_accounts(principal)
    return {"items": [public_view(a, None, reveal_accounts=reveal) for a in page], "next_cursor": next_cursor}


def parse_downstream(event: Event) -> Downstream:
    """The event's data as its model; ValueError (the consumer dead-letters the event) for data
    the projection cannot show, or a type it does not show."""
    model = DOWNSTREAM.get(event.type)
    if model is None:
        raise ValueError(f"{event.type}: not an event the status projection shows")
    return parse_data(event, model)


class ProjectionStore(Protocol):
    """What the status projection reads and writes (IntakeRepository; a fake in unit tests)."""

    async def lock_states(self, app_ids: Sequence[str]) -> dict[str, ApplicationState]: ...

    async def add_timeline_entries(self, entries: Sequence[tuple[str, Event]]) -> None: ...

    async def save_states(self, states: Mapping[str, ApplicationState]) -> None: ...


async def project_downstream(store: ProjectionStore, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """Project assessments, awards, reviews, announcements, objections and payment steps onto applications and
    their timelines, a batch in three statements: lock the applications (in id order), add the timeline
    entries, write each projection once."""
    checked: list[tuple[str, Event, Downstream]] = []
    for event in events:
        try:
            data = parse_downstream(event)
        except ValueError as exc:
            dead_letter(event, exc)
            continue
        checked.append((data.application_id or event.subject, event, data))
    if not checked:
        return
    states = await store.lock_states(sorted({a for a, _, _ in checked}))
    ours = [c for c in checked if c[0] in states]  # others: another deployment's, nothing to project
    if not ours:
        return
    await store.add_timeline_entries([(a, for_timeline(e)) for a, e, _ in ours])
    for app_id, event, data in ours:
        states[app_id] = project(states[app_id], data, event.time.isoformat())
    await store.save_states({a: states[a] for a in sorted({a for a, _, _ in ours})})


async def record_downstream_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """The status consumer's batch handler."""
    await project_downstream(IntakeRepository(session), events, dead_letter)
