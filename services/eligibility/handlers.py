"""What eligibility does: assess an application posted to /v1/evaluate, and turn each
`application.received` event into a kept receipt and an `application.assessed` event, under
the call it was received in (that call's catalog version, event window and year)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.domain import Assessed, assess, assess_received
from services.eligibility.repository import EligibilityRepository
from shared.contracts.envelope import Event
from shared.contracts.events import ApplicationAssessed, ApplicationReceived, new_typed_event, parse_data
from shared.kernel.errors import ValidationFailed
from shared.messaging.consumer import DeadLetter
from shared.policy.calls import CallTerms
from shared.policy.catalog import Catalog, catalog_from_document, compiled_catalog, load_catalog
from shared.policy.validation import validate_application

SOURCE = "grantline.eligibility"


class PolicySource(Protocol):
    """Where the calls and catalog versions are read (PolicyRepository; a fake in unit tests)."""

    async def documents(self, versions: Collection[str]) -> dict[str, dict[str, Any]]: ...

    async def calls(self, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]: ...


class EvaluationSource(PolicySource, Protocol):
    async def latest_version(self) -> str | None: ...

    async def open_call_for(self, program: str, year: int) -> Mapping[str, Any] | None: ...


async def catalogs_of(source: PolicySource, versions: Collection[str]) -> dict[str, Catalog]:
    """The compiled catalogs of those of `versions` that are published. A version never changes:
    one compiled is good for the process's life, so only the first use of a version reads it."""
    found = {version: catalog for version in versions if (catalog := compiled_catalog(version)) is not None}
    missing = [version for version in versions if version not in found]
    if missing:
        for version, document in (await source.documents(missing)).items():
            found[version] = catalog_from_document(document)
    return found


async def catalog_of(source: PolicySource, version: str) -> Catalog | None:
    return (await catalogs_of(source, [version])).get(version)


# ---------------------------------------------------------------------------------------------
# POST /v1/evaluate
# ---------------------------------------------------------------------------------------------


def _program_and_year(body: object) -> tuple[str, int] | None:
    """The program and year a body names, when they are worth looking a call up by (anything
    else is refused by validation against the latest catalog)."""
    if not isinstance(body, dict):
        return None
    program, year = body.get("program"), body.get("year")
    if not isinstance(program, str) or not 0 < len(program) <= 64 or "\x00" in program:
        return None
    if type(year) is not int or not 2000 <= year <= 2100:
        return None
    return program, year


async def evaluate(source: EvaluationSource, body: object) -> dict[str, Any]:
    """The receipt an application would get now, with no side effect: under the open call for its
    program and year (that call's catalog version), else under the latest version, without a call."""
    named = _program_and_year(body)
    row = await source.open_call_for(*named) if named else None
    call = None if row is None else CallTerms.from_row(row)
    version = call.catalog_version if call is not None else await source.latest_version()
    catalog = load_catalog() if version is None else await catalog_of(source, version)
    assert catalog is not None  # a call's version is stored before the call (a foreign key)
    application, errors = validate_application(body, catalog)
    if errors or application is None:
        raise ValidationFailed("the application has invalid fields", errors=errors)
    receipt = assess(application, catalog, call).to_receipt()
    # An evaluation tells first whether a reviewer settles the amount (CONTRACT.md).
    return {"program": receipt.pop("program"), "review": receipt.pop("review"), **receipt}


# ---------------------------------------------------------------------------------------------
# application.received → application.assessed
# ---------------------------------------------------------------------------------------------


def assessed_event(assessed: Assessed) -> tuple[Event, str]:
    """The `application.assessed` event of a kept receipt, under the applicant's key."""
    event = new_typed_event(ApplicationAssessed.model_validate(assessed.receipt), source=SOURCE,
                            subject=assessed.application_id, causation=assessed.received)
    return event, assessed.application.applicant_id


class AssessmentStore(PolicySource, Protocol):
    """What assessing needs (EligibilityRepository; a fake in unit tests)."""

    async def store_assessments(self, batch: Sequence[Assessed]) -> set[str]: ...

    async def add_events(self, events: Iterable[tuple[Event, str]]) -> None: ...


async def _calls_of(store: AssessmentStore, received: Iterable[ApplicationReceived]) -> dict[str, CallTerms]:
    ids = {r.call_id for r in received if r.call_id is not None}
    if not ids:  # history from before calls: nothing to read
        return {}
    return {call_id: CallTerms.from_row(row) for call_id, row in (await store.calls(ids)).items()}


async def assess_applications(store: AssessmentStore, events: Sequence[Event], dead_letter: DeadLetter) -> None:
    """A partition's batch in a few statements: its calls and their catalogs, the receipts, then
    their events. An application received under a call is assessed under it (its catalog
    version); one without (history from before calls) under the shipped catalog, as it was."""
    received: list[tuple[Event, ApplicationReceived]] = []
    for event in events:
        try:
            received.append((event, parse_data(event, ApplicationReceived)))
        except ValueError as exc:
            dead_letter(event, exc)
    calls = await _calls_of(store, (r for _, r in received))
    catalogs = await catalogs_of(store, {call.catalog_version for call in calls.values()})
    batch: dict[str, Assessed] = {}
    for event, data in received:
        call = None if data.call_id is None else calls.get(data.call_id)
        try:
            if data.call_id is not None and call is None:
                raise ValueError(f"application.received: unknown call {data.call_id}")
            catalog = load_catalog() if call is None else catalogs[call.catalog_version]
            assessed = assess_received(event, catalog, call)
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
