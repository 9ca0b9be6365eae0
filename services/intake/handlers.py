"""What intake does with each command and each downstream event: thin, over the repository and
the domain. (Submitting an application is services.intake.submissions.)"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import SOURCE, ApplicationState, project, public_view
from services.intake.repository import IntakeRepository
from shared.contracts.envelope import Event, new_event
from shared.kernel.cursors import decode_cursor, encode_cursor
from shared.kernel.money import AmountError, parse_amount
from shared.messaging.consumer import DeadLetter
from shared.web.auth import Principal, hash_secret, new_api_key, webhook_secret_for

CURSOR_TAG = "s"  # the applications list


def _viewer(principal: Principal) -> str | None:
    """The partner whose applications `principal` may see; None for staff, who see all."""
    if principal.role != "partner":
        return None
    assert principal.partner_id is not None  # auth gives every partner principal its id
    return principal.partner_id


async def register_partner(
    repo: IntakeRepository, *, name: str, callback_url: str, signing_key: str, correlation: str | None
) -> dict[str, str]:
    partner_id = "ptn_" + uuid.uuid4().hex[:20]
    api_key = new_api_key()
    key_hash = hash_secret(api_key)
    await repo.add_partner(partner_id, name=name, callback_url=callback_url, api_key_hash=key_hash)
    event = new_event(
        "partner.registered",
        source=SOURCE,
        subject=partner_id,
        correlation_id=correlation,
        data={"partner_id": partner_id, "name": name, "callback_url": callback_url, "api_key_hash": key_hash},
    )
    await repo.add_events([(event, partner_id)])
    return {
        "id": partner_id,
        "name": name,
        "callback_url": callback_url,
        "api_key": api_key,
        "webhook_secret": webhook_secret_for(partner_id, signing_key),
    }


async def get_application(repo: IntakeRepository, app_id: str, principal: Principal) -> dict[str, Any] | None:
    app = await repo.find_application(app_id, _viewer(principal))
    if app is None:
        return None
    return public_view(app, await repo.timeline(app_id))


async def get_application_events(
    repo: IntakeRepository, app_id: str, principal: Principal
) -> list[dict[str, Any]] | None:
    """Every event that touched the application, across services, in timeline order, as full envelopes:
    intake's own from its outbox, downstream ones as consumed. None when not visible to the principal."""
    if not await repo.is_visible(app_id, _viewer(principal)):
        return None
    return [item.as_envelope(app_id) for item in await repo.timeline(app_id, envelopes=True)]


async def list_applications(
    repo: IntakeRepository,
    principal: Principal,
    *,
    status: str | None,
    program: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """A page of the applications the principal may see, newest first; ValueError for a bad cursor."""
    before = decode_cursor(cursor, CURSOR_TAG) if cursor else None
    apps = await repo.list_applications(
        _viewer(principal), status=status, program=program, before=before, limit=limit + 1
    )
    page = apps[:limit]
    next_cursor = encode_cursor(page[-1].seq, CURSOR_TAG) if len(apps) > limit else None
    return {"items": [public_view(a, None) for a in page], "next_cursor": next_cursor}


_DECIDED_STATUSES = frozenset({"approved", "partially_approved", "rejected", "ineligible"})


def check_downstream_data(event_type: str, data: dict[str, Any]) -> None:
    """ValueError (the consumer dead-letters the event) for data the projection cannot show as is."""

    def amount(key: str) -> None:
        if key in data:
            try:
                parse_amount(data[key])
            except AmountError as exc:
                raise ValueError(f"{event_type}: data.{key}: {exc}") from exc

    def instant(key: str) -> None:
        value = data.get(key)
        if value is None:
            return
        try:
            if not isinstance(value, str):
                raise TypeError(type(value).__name__)
            datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{event_type}: data.{key}: not an RFC 3339 time") from exc

    if "application_id" in data and not isinstance(data["application_id"], str):
        raise ValueError(f"{event_type}: data.application_id: must be a string")
    if "reasons" in data and not isinstance(data["reasons"], list):
        raise ValueError(f"{event_type}: data.reasons: must be a list")
    if event_type == "application.assessed":
        if not isinstance(data.get("eligible"), bool):
            raise ValueError(f"{event_type}: data.eligible: must be true or false")
        amount("entitlement")
    elif event_type == "award.decided":
        if data.get("status") not in _DECIDED_STATUSES:
            raise ValueError(f"{event_type}: data.status: must be one of {sorted(_DECIDED_STATUSES)}")
        amount("entitlement")
        amount("awarded")
    elif event_type == "announcement.published":
        instant("published_at")
        instant("notice_ends_at")
    elif event_type == "award.finalized":
        instant("finalized_at")


class ProjectionStore(Protocol):
    """What the status projection reads and writes (IntakeRepository; a fake in unit tests)."""

    async def lock_states(self, app_ids: Sequence[str]) -> dict[str, ApplicationState]: ...

    async def add_timeline_entries(self, entries: Sequence[tuple[str, Event]]) -> None: ...

    async def save_states(self, states: Mapping[str, ApplicationState]) -> None: ...


async def project_downstream(store: ProjectionStore, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """Project assessments, awards and announcements onto applications and their timelines,
    a batch in three statements: lock the applications (in id order), add the timeline
    entries, write each projection once."""
    checked: list[tuple[str, Event]] = []
    for event in events:
        try:
            check_downstream_data(event.type, event.data)
        except ValueError as exc:
            dead_letter(event, exc)
            continue
        app_id = event.data.get("application_id") or event.subject
        if isinstance(app_id, str):
            checked.append((app_id, event))
    if not checked:
        return
    states = await store.lock_states(sorted({a for a, _ in checked}))
    ours = [(a, e) for a, e in checked if a in states]  # others: another deployment's, nothing to project
    if not ours:
        return
    await store.add_timeline_entries(ours)
    for app_id, event in ours:
        states[app_id] = project(states[app_id], event.type, event.data, event.time.isoformat())
    await store.save_states({a: states[a] for a in sorted({a for a, _ in ours})})


async def record_downstream_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """The status consumer's batch handler."""
    await project_downstream(IntakeRepository(session), events, dead_letter)
