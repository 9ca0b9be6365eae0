"""What eligibility does: assess an application posted to /v1/evaluate, and turn each
`application.received` event into a kept receipt and an `application.assessed` event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.domain import Assessed, assess, assess_received
from services.eligibility.repository import EligibilityRepository
from shared.contracts.envelope import Event
from shared.contracts.events import ApplicationAssessed, new_typed_event
from shared.messaging.consumer import DeadLetter
from shared.policy.catalog import Catalog, load_catalog
from shared.policy.validation import ApplicationInput

SOURCE = "grantline.eligibility"


def receipt_for(application: ApplicationInput, catalog: Catalog) -> dict[str, Any]:
    return assess(application, catalog).to_receipt()


def assessed_event(assessed: Assessed) -> tuple[Event, str]:
    """The `application.assessed` event of a kept receipt, under the applicant's key."""
    event = new_typed_event(ApplicationAssessed.model_validate(assessed.receipt), source=SOURCE,
                            subject=assessed.application_id, causation=assessed.received)
    return event, assessed.application.applicant_id


class AssessmentStore(Protocol):
    """What assessing needs (EligibilityRepository; a fake in unit tests)."""

    async def store_assessments(self, batch: Sequence[Assessed]) -> set[str]: ...

    async def add_events(self, events: Iterable[tuple[Event, str]]) -> None: ...


async def assess_applications(store: AssessmentStore, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """A partition's batch in two statements: the receipts, then their events."""
    catalog = load_catalog()
    batch: dict[str, Assessed] = {}
    for event in events:
        try:
            assessed = assess_received(event, catalog)
        except ValueError as exc:
            dead_letter(event, exc)
            continue
        # Two copies of one application in a batch: the first stands, as across batches.
        batch.setdefault(assessed.application_id, assessed)
    if not batch:
        return
    stored = await store.store_assessments(list(batch.values()))
    await store.add_events([assessed_event(a) for app_id, a in batch.items() if app_id in stored])


async def assess_batch(session: AsyncSession, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """The assess consumer's batch handler."""
    await assess_applications(EligibilityRepository(session), events, dead_letter)
