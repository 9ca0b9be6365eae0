"""One pydantic model per event type: the envelope's `data`, built with it by the publisher
and parsed with it by every consumer (the envelope itself stays generic: `Event.data` is a dict).

Three rules hold for every model here:

- **What goes on the wire is what was put in.** `to_data()` dumps with `exclude_unset`: a key
  the publisher set is written (a null included), a key it did not set is not. So a model
  validated from today's dict dumps that dict again, key for key and in the same order
  (fields are declared in the order the publishers have always written them), and a consumer
  that forwards data (webhooks, stored decisions) forwards it unchanged.
- **Publishers are complete.** `new_typed_event` refuses a model that leaves out a field the
  publisher has always written (`optional_on_wire` names the few that may be absent), so a
  forgotten keyword cannot silently drop a key from the wire.
- **Consumers are as tolerant as they were, no more.** A field is required only when every
  consumer of the type needs it; a field some consumer can do without is optional (absent →
  None or an empty list) but type-checked when present. `Omittable[...]` fields may be absent
  but never null (no publisher writes null there, and the consumers that read them refuse
  null); `X | None` fields may be null because a publisher writes null there. A consumer that
  needs an optional field checks it itself (the docstring of each model says who needs what).

Types are strict (no "2024" → 2024, no 1 → True): the wire is JSON written by our own
publishers, and coercion would hide a broken one. Money stays a decimal string, checked with
shared.kernel.money.parse_amount and never converted (no float, no re-formatting); times stay
RFC 3339 strings, checked and never re-formatted.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from shared.contracts.envelope import Event, new_event
from shared.kernel.money import parse_amount

T = TypeVar("T")
M = TypeVar("M", bound="EventData")


# ---------------------------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------------------------


def _not_null(value: object) -> object:
    # Runs only on a value that is present (defaults are not validated): absent is allowed, null is not.
    if value is None:
        raise ValueError("must not be null (leave the key out instead)")
    return value


def _amount(text: str) -> str:
    parse_amount(text)  # AmountError is a ValueError: pydantic reports it as a validation error
    return text


def _iso_date(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO date such as 2026-01-31") from None
    return text


def _instant(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2024-06-01T00:00:00+00:00") from None
    return text


Omittable = Annotated[T | None, BeforeValidator(_not_null)]
"""May be absent (None then), never null."""

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Amount = Annotated[str, AfterValidator(_amount)]
"""Yuan as a decimal string with at most two places ("1600000.00"), kept as written."""
Instant = Annotated[str, AfterValidator(_instant)]
"""An RFC 3339 time string, kept as written."""

DecisionStatus = Literal["pending_review", "approved", "partially_approved", "rejected", "ineligible"]
ReviewDecision = Literal["approve", "reject"]
ObjectionOutcome = Literal["upheld", "dismissed"]


# ---------------------------------------------------------------------------------------------
# Bases
# ---------------------------------------------------------------------------------------------


class WireModel(BaseModel):
    """A JSON object inside an event's data."""

    # extra="allow", not "ignore": unknown keys are kept and dumped again, so a consumer that
    # forwards or stores the data (webhook bodies, decisions.data, the intake timeline) loses
    # nothing a newer producer added, and an older consumer does not break on it. Not "forbid":
    # adding a key must stay a compatible change.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, use_attribute_docstrings=True)

    def to_data(self) -> dict[str, Any]:
        """The JSON object as it goes on the wire: the keys that were set, in declaration order,
        then any extra keys. Aliases are the wire names (`from` is a keyword in Python)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class EventData(WireModel):
    """The `data` of one event type."""

    event_type: ClassVar[str]
    optional_on_wire: ClassVar[frozenset[str]] = frozenset()
    """Fields a publisher may leave out; every other field it must set (new_typed_event checks)."""

    def unset_fields(self) -> list[str]:
        """Fields a publisher must set and did not."""
        return [
            name
            for name in type(self).model_fields
            if name not in self.model_fields_set and name not in self.optional_on_wire
        ]


# ---------------------------------------------------------------------------------------------
# Nested objects
# ---------------------------------------------------------------------------------------------


class Applicant(WireModel):
    """The applicant: all four keys in an application and its receipt; `id` and `name` in award
    events (`name` may be null there when the receipt had none)."""

    id: NonEmpty
    """The unified social credit code (checked by policy validation, not here: replays and
    benches carry made-up codes)."""
    name: str | None = None
    kind: Omittable[str] = None
    registered_in_shanghai: Omittable[bool] = None


class ApplicationBody(WireModel):
    """An application as intake accepted it (shared.policy.validation.ApplicationInput.to_wire).

    Only its shape is checked here; eligibility validates it fully against the catalog
    (`ApplicationInput.from_wire(body.to_data())`), which also refuses unknown keys."""

    program: NonEmpty
    year: int
    applicant: Applicant
    subject: str
    facts: dict[str, Any]
    requested_amount: Amount | None = None
    """Left out (not null) when the application has none."""


class Reason(WireModel):
    """A reason in a decision, with the paragraph it cites (shared.policy.reasons.Reason)."""

    code: NonEmpty
    message: str
    citation: str | None = None
    """Always written (may be ""); the ledger reads a missing or null one as ""."""


class RuleResult(WireModel):
    """One rule the engine checked. No consumer reads rules: only `passed` is required."""

    rule: Omittable[str] = None
    passed: bool
    detail: Omittable[str] = None
    citation: Omittable[str] = None


class PoolClaim(WireModel):
    """A pool the award would draw on, with its cap (the ledger has no catalog of its own).

    Scopes and the pool instance each names (the ledger keys pools by pool, beneficiary, year,
    subject; ANY_BENEFICIARY stands in for a pool shared by every applicant):
    - `beneficiary_year`: (pool, beneficiary, the call's support year);
    - `subject`: (pool, beneficiary, subject key) — per product or project of one applicant;
    - `project`: (pool, ANY_BENEFICIARY, subject key) — one project however many applicants
      run it (GT-CLIN's 50万 per trial, across hospitals);
    - `call`: (`call-budget`, ANY_BENEFICIARY, the call's year, the call id) — a call's budget.
    Subjects here are keys (shared.kernel.subjects.subject_key), never the text as typed."""

    pool: NonEmpty
    scope: NonEmpty
    beneficiary: NonEmpty
    year: int | None = None
    """Set for beneficiary_year and call pools."""
    subject: str | None = None
    """Set for subject and project pools (the subject key) and call pools (the call id)."""
    cap: Amount
    citation: str


class Overlap(WireModel):
    """不重复: one live award per (applicant, subject, milestone), across programs."""

    applicant: NonEmpty
    subject: NonEmpty
    milestone: NonEmpty


class AssessmentInputs(WireModel):
    """What the engine assessed (the receipt's inputs); no consumer reads them."""

    requested_amount: Amount | None = None
    facts: Omittable[dict[str, Any]] = None


class Draw(WireModel):
    """What an award took from one pool."""

    pool: NonEmpty
    beneficiary: Omittable[str] = None
    year: int | None = None
    subject: str | None = None
    amount: Amount


# ---------------------------------------------------------------------------------------------
# Event data, one model per type
# ---------------------------------------------------------------------------------------------


class Actor(WireModel):
    """Who did a thing: a staff member (`{"id": "stf_…", "name": "张三"}`) or a bootstrap token's
    identity (`{"id": "operator"}`, no name)."""

    id: NonEmpty
    name: Omittable[str] = None


class PartnerRegistered(EventData):
    """`partner.registered` (intake) → every service's partner directory replica
    (shared.messaging.directory). The first four keys are required; `registered_by` (the admin
    who registered the partner) is absent from events written before staff accounts."""

    event_type: ClassVar[str] = "partner.registered"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"registered_by"})

    partner_id: NonEmpty
    name: str
    callback_url: str
    api_key_hash: str
    registered_by: Omittable[Actor] = None


class Payee(WireModel):
    """Where an award is paid: the account's name, its number and the bank's 12-digit CNAPS code.
    Only `application.received` and `payee.updated` carry the full number; every other event and
    every answer outside the payment office carries `masked_account` (`****0123`) instead."""

    account_name: NonEmpty
    account_number: NonEmpty
    bank_code: NonEmpty


class ApplicationReceived(EventData):
    """`application.received` (intake) → eligibility, which assesses `application`; the ledger
    keeps `payee` for the payment order."""

    event_type: ClassVar[str] = "application.received"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"call_id", "payee"})

    application_id: NonEmpty
    partner_id: NonEmpty
    application: ApplicationBody
    call_id: Omittable[NonEmpty] = None
    """The call (申报批次) the application was received under; absent in history from before calls."""
    payee: Omittable[Payee] = None
    """Absent when the partner gave none at submission (a payment order waits for `payee.updated`)."""


class PayeeUpdated(EventData):
    """`payee.updated` (intake, on grantline.applications, keyed by applicant) → the ledger's
    payee for the application's payment order (a waiting or returned order becomes ready)."""

    event_type: ClassVar[str] = "payee.updated"

    application_id: NonEmpty
    partner_id: NonEmpty
    applicant_id: NonEmpty
    payee: Payee
    updated_at: Instant


class PaymentStep(EventData):
    """The shape every `payment.*` event shares (ledger, on grantline.payments, keyed by applicant)
    → intake's projection (the application's `payment` block) and notify's webhooks."""

    order_id: NonEmpty
    application_id: NonEmpty
    partner_id: str | None = None
    applicant_id: NonEmpty
    amount: Amount
    status: NonEmpty
    """The order's status after this step: ready, awaiting_payee, sent, settled, failed or returned."""
    batch_id: Omittable[str | None] = None
    masked_account: Omittable[str | None] = None
    """`****0123`, never the full number."""
    reason_code: Omittable[str | None] = None
    """The bank's reason code (pain.002 `StsRsnInf/Rsn/Cd`, camt `RtrInf/Rsn/Cd`)."""
    reason: Omittable[str | None] = None
    at: Instant
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"batch_id", "masked_account", "reason_code", "reason"})


class PaymentOrdered(PaymentStep):
    """`payment.ordered`: the award is finalized and posted; status ready or awaiting_payee."""

    event_type: ClassVar[str] = "payment.ordered"


class PaymentSent(PaymentStep):
    """`payment.sent`: the batch's pain.001 was downloaded for the bank (payable → in transit)."""

    event_type: ClassVar[str] = "payment.sent"


class PaymentSettled(PaymentStep):
    """`payment.settled`: a booked statement entry matched the order (in transit → settled)."""

    event_type: ClassVar[str] = "payment.settled"


class PaymentFailed(PaymentStep):
    """`payment.failed`: the bank rejected the transaction (pain.002 RJCT), with its reason."""

    event_type: ClassVar[str] = "payment.failed"


class PaymentReturned(PaymentStep):
    """`payment.returned`: the money came back (camt RtrInf); the order waits for a corrected payee."""

    event_type: ClassVar[str] = "payment.returned"


class PaymentBatchStep(EventData):
    """The shape of the batch events (ledger, on grantline.payments, keyed by batch id): a payment
    officer's act on a batch, which moves no money and so has no `payment.*` step of its own. They
    are the ledger's record of who did what when, in the order it happened, so that
    `grantline-replay` repeats the act (CONTRACT.md "Ledger", replay); no consumer needs them."""

    batch_id: NonEmpty
    count: int
    control_sum: Amount
    at: Instant


class PaymentBatchCreated(PaymentBatchStep):
    """`payment.batch_created`: ready orders gathered into a batch (`program` and `year` as asked,
    null when not); the batch holds the first `count` of them in order id order."""

    event_type: ClassVar[str] = "payment.batch_created"

    program: str | None = None
    year: int | None = None
    created_by: Actor


class PaymentBatchApproved(PaymentBatchStep):
    """`payment.batch_approved`: a second payment officer approved the batch (four eyes)."""

    event_type: ClassVar[str] = "payment.batch_approved"

    approved_by: Actor


class PayerAccount(WireModel):
    """The treasury's account a batch is paid from (the pain.001's debtor): not personal data."""

    name: NonEmpty
    account: NonEmpty
    bank_code: NonEmpty


class PaymentBatchSent(PaymentBatchStep):
    """`payment.batch_sent`: the batch's pain.001 was first downloaded (its orders' `payment.sent`
    follow), with the debtor it names and the SHA-256 of the document's bytes."""

    event_type: ClassVar[str] = "payment.batch_sent"

    payer: PayerAccount
    document_sha256: NonEmpty


class ApplicationAssessed(EventData):
    """`application.assessed` (eligibility): the assessment receipt.

    Consumers: intake's status projection needs only `eligible` (and reads `entitlement`,
    `reasons` and `application_id` when present); the ledger decides on it and also needs
    `application_id`, `program`, `year`, `applicant.id`, `subject`, `entitlement`, and
    `overlap` when eligible, and checks them itself."""

    event_type: ClassVar[str] = "application.assessed"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"call_id"})

    program: Omittable[NonEmpty] = None
    year: Omittable[int] = None
    applicant: Omittable[Applicant] = None
    subject: Omittable[NonEmpty] = None
    eligible: bool
    entitlement: Omittable[Amount] = None
    """The most the policy pays before any pool is consulted ("0.00" when ineligible)."""
    reasons: list[Reason] = []
    rules: list[RuleResult] = []
    pools: list[PoolClaim] = []
    overlap: Overlap | None = None
    """Null or absent only when ineligible."""
    catalog_version: str | None = None
    call_id: Omittable[NonEmpty] = None
    """The call assessed under (its catalog version, event window and support year)."""
    engine_version: Omittable[str] = None
    inputs: Omittable[AssessmentInputs] = None
    review: Omittable[NonEmpty] = None
    """The program's review mode, "required" or "auto" (absent in history from before reviews:
    the ledger reads that as "auto")."""
    application_id: Omittable[NonEmpty] = None
    """Absent: the envelope's subject is the application id."""
    partner_id: str | None = None
    received_at: Omittable[Instant] = None


class AwardDecided(EventData):
    """`award.decided` (ledger).

    Consumers: intake's projection needs `status` (and reads `entitlement`, `awarded`,
    `limited_by`, `reasons`, `application_id` when present); notify needs `partner_id`, and to
    announce also `program`, `year`, `subject`, `applicant.id`, and checks them itself (it groups
    the 公示 by `call_id` when present)."""

    event_type: ClassVar[str] = "award.decided"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"held", "call_id"})

    application_id: Omittable[NonEmpty] = None
    """Absent: the envelope's subject is the application id."""
    partner_id: str | None = None
    """Null when the receipt named no partner."""
    program: Omittable[NonEmpty] = None
    year: Omittable[int] = None
    applicant: Omittable[Applicant] = None
    subject: Omittable[NonEmpty] = None
    status: DecisionStatus
    entitlement: Omittable[Amount] = None
    awarded: Omittable[Amount] = None
    limited_by: str | None = None
    """The pool that limited the award, or null."""
    reasons: list[Reason] = []
    top_up_of: str | None = None
    draws: list[Draw] = []
    catalog_version: str | None = None
    held: Omittable[Amount] = None
    """Under review (`status` pending_review): the amount held on every pool the award draws on
    (`awarded` is "0.00" until a reviewer approves). Absent for programs decided at once."""
    review: Omittable[NonEmpty] = None
    """The program's review mode, "required" or "auto" (absent in history from before reviews;
    the ledger always writes it now)."""
    call_id: Omittable[NonEmpty] = None
    """The call (申报批次) the receipt was assessed under, passed on from it (absent in history from
    before, and when the receipt named none)."""


class AwardReviewed(EventData):
    """`award.reviewed` (ledger, on grantline.awards): a reviewer's 核定 of a pending award.

    Consumers: intake's projection (status, awarded, the review block), notify (announces an
    approved award; a webhook to the partner). The part not approved went back to every pool in
    the same transaction (`released`)."""

    event_type: ClassVar[str] = "award.reviewed"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"limited_by", "call_id"})

    application_id: NonEmpty
    partner_id: str | None = None
    program: NonEmpty
    year: int
    applicant: Applicant
    subject: NonEmpty
    decision: ReviewDecision
    status: DecisionStatus
    """approved (the full hold), partially_approved (less than held: REVIEW_REDUCED) or rejected."""
    held: Amount
    awarded: Amount
    released: Amount
    limited_by: str | None = None
    reasons: list[Reason] = []
    reviewed_by: Actor
    reason: NonEmpty
    reviewed_at: Instant
    draws: list[Draw] = []
    call_id: Omittable[NonEmpty] = None
    """The call (申报批次) of the award's receipt (absent in history from before, and when the
    receipt named none)."""


class StaffRegistered(EventData):
    """`staff.registered` (intake, on grantline.partners) → every service's staff directory
    replica: who may sign in with which roles. The key travels only as its hash."""

    event_type: ClassVar[str] = "staff.registered"

    staff_id: NonEmpty
    name: NonEmpty
    roles: list[NonEmpty]
    api_key_hash: NonEmpty
    registered_by: Actor
    registered_at: Instant


class StaffDeactivated(EventData):
    """`staff.deactivated` (intake, on grantline.partners): the key stops working everywhere."""

    event_type: ClassVar[str] = "staff.deactivated"

    staff_id: NonEmpty
    deactivated_by: Actor
    reason: NonEmpty
    deactivated_at: Instant


class ObjectionFiled(EventData):
    """`objection.filed` (notify, on grantline.announcements). The only event that carries the
    objector's name and contact (CONTRACT.md): consumers other than notify must not store them."""

    event_type: ClassVar[str] = "objection.filed"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"organisation"})

    objection_id: NonEmpty
    announcement_id: NonEmpty
    application_id: NonEmpty
    name: NonEmpty
    organisation: Omittable[str] = None
    contact: NonEmpty
    statement: NonEmpty
    filed_at: Instant


class ObjectionResolved(EventData):
    """`objection.resolved` (notify, on grantline.announcements) → the ledger revokes the award
    when `outcome` is upheld (OBJECTION_UPHELD, by the reviewer); intake's projection. No name,
    no contact."""

    event_type: ClassVar[str] = "objection.resolved"

    objection_id: NonEmpty
    announcement_id: NonEmpty
    application_id: NonEmpty
    partner_id: str | None = None
    outcome: ObjectionOutcome
    reason: NonEmpty
    resolved_by: Actor
    resolved_at: Instant


class AwardRevoked(EventData):
    """`award.revoked` (ledger).

    Consumers: intake's projection (reads `reason` and `application_id` when present); notify
    needs `partner_id` and checks it itself; the ledger's replay reads its own history and needs
    `application_id`, `reason`, `revoked_by`, `revoked_at` (and `reason_code` when present)."""

    event_type: ClassVar[str] = "award.revoked"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"reason_code"})

    application_id: Omittable[NonEmpty] = None
    partner_id: str | None = None
    program: Omittable[NonEmpty] = None
    year: Omittable[int] = None
    applicant: Omittable[Applicant] = None
    subject: Omittable[str] = None
    amount: Omittable[Amount] = None
    reason: Omittable[str] = None
    revoked_by: Omittable[str] = None
    revoked_at: Omittable[Instant] = None
    reason_code: Omittable[NonEmpty] = None
    """Why, as a reason code, when it is not an operator's revocation: OBJECTION_UPHELD (an
    objection to the 公示 upheld; `revoked_by` is the reviewer who resolved it). Absent otherwise."""


class AnnouncementPublished(EventData):
    """`announcement.published` (notify) → intake's projection (times null or absent are
    tolerated: the event's time stands in for `published_at`)."""

    event_type: ClassVar[str] = "announcement.published"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"announcement_id"})

    application_id: Omittable[NonEmpty] = None
    partner_id: str | None = None
    program: Omittable[str] = None
    year: Omittable[int] = None
    applicant_name: str | None = None
    subject: Omittable[str] = None
    amount: Omittable[Amount] = None
    published_at: Instant | None = None
    notice_ends_at: Instant | None = None
    announcement_id: Omittable[NonEmpty] = None
    """The announcement's id (`ann_…`), which objections name; intake shows it as
    `announcement.id`. Absent in history from before objections (and until notify sets it)."""


class AwardFinalized(EventData):
    """`award.finalized` (notify's finaliser) → intake's projection (reads `finalized_at`,
    the event's time when absent)."""

    event_type: ClassVar[str] = "award.finalized"

    application_id: Omittable[NonEmpty] = None
    partner_id: Omittable[str] = None
    program: Omittable[str] = None
    year: Omittable[int] = None
    subject: Omittable[str] = None
    amount: Omittable[Amount] = None
    finalized_at: Instant | None = None


class EventDeadLettered(EventData):
    """`event.dead_lettered` (the consumer loop, any service) → the dead-letter list and
    re-drive (shared.messaging.deadletters).

    Two forms are written: per event (`key` and `original` always, null when the record had
    none; `original_b64` up to 60 000 bytes; `trace` for an exception) and, when a whole batch
    is parked, a minimal one (no `key`, `original` or `trace`). Every field is optional when
    parsing: an operator must be able to list and judge any dead letter, and re-drive says
    itself why one without consumer, topic or bytes cannot be re-driven."""

    event_type: ClassVar[str] = "event.dead_lettered"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"key", "original", "original_b64", "trace"})

    consumer: Omittable[str] = None
    topic: Omittable[str] = None
    """With the deployment's topic namespace."""
    partition: Omittable[int] = None
    offset: Omittable[int] = None
    key: str | None = None
    error: Omittable[str] = None
    original: str | None = None
    """The message as text (lossy; NUL replaced)."""
    original_b64: Omittable[str] = None
    """The message's exact bytes, base64."""
    trace: Omittable[str] = None


ANY_BENEFICIARY = "*"
"""The beneficiary of a pool every applicant shares (project and call-budget pools)."""


class EventWindow(WireModel):
    """The dates a call admits events from and to, both inclusive (ISO dates)."""

    from_: Annotated[str, AfterValidator(_iso_date)] = Field(alias="from")
    to: Annotated[str, AfterValidator(_iso_date)]

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, populate_by_name=True)


class CatalogPublished(EventData):
    """`catalog.published` (eligibility, on grantline.policy, keyed by version) → intake's replica
    of the catalog (it validates facts against the version a call pinned).

    The document travels whole: a version is immutable and content-addressed, and a consumer
    must be able to rebuild it from the event history alone."""

    event_type: ClassVar[str] = "catalog.published"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"note"})

    version: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
    published_at: Instant
    published_by: Actor
    note: Omittable[str] = None
    document: dict[str, Any]


class CallOpened(EventData):
    """`call.opened` (eligibility, on grantline.policy, keyed by program) → intake's replica of
    the calls (it accepts an application only while its program's call for the year is open);
    notify's replica of their titles (the 公示 page's groups)."""

    event_type: ClassVar[str] = "call.opened"
    optional_on_wire: ClassVar[frozenset[str]] = frozenset({"budget"})

    id: NonEmpty
    program: NonEmpty
    year: int
    title: str
    opens_at: Instant
    closes_at: Instant
    event_window: EventWindow
    catalog_version: NonEmpty
    budget: Omittable[Amount] = None
    opened_by: Actor
    opened_at: Instant


class CallClosed(EventData):
    """`call.closed` (eligibility, on grantline.policy, keyed by program): the call admits no
    application received at or after `closes_at` (the moment it was closed)."""

    event_type: ClassVar[str] = "call.closed"

    id: NonEmpty
    program: NonEmpty
    year: int
    closes_at: Instant
    closed_by: Actor
    reason: NonEmpty


EVENT_DATA: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        PartnerRegistered,
        ApplicationReceived,
        ApplicationAssessed,
        AwardDecided,
        AwardRevoked,
        AnnouncementPublished,
        AwardFinalized,
        EventDeadLettered,
        CatalogPublished,
        CallOpened,
        CallClosed,
        AwardReviewed,
        StaffRegistered,
        StaffDeactivated,
        ObjectionFiled,
        ObjectionResolved,
        PayeeUpdated,
        PaymentOrdered,
        PaymentSent,
        PaymentSettled,
        PaymentFailed,
        PaymentReturned,
        PaymentBatchCreated,
        PaymentBatchApproved,
        PaymentBatchSent,
    )
}


# ---------------------------------------------------------------------------------------------
# Parsing and building
# ---------------------------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...]) -> str:
    out = "data"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problem(error: Any) -> str:
    text = f"{_where(tuple(error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
    if error["type"] != "missing":
        shown = repr(error["input"])
        text += f" (got {shown[:80] + '…' if len(shown) > 80 else shown})"
    return text


def parse_data(event: Event, model: type[M]) -> M:
    """The event's data as `model`.

    Malformed data raises ValueError naming the event type, each bad field and the value found
    (`award.decided: data.year: Input should be a valid integer (got 'MMXXIV')`), so the
    consumer loop dead-letters the event. Deliberately the builtin ValueError, not a subclass:
    the dead letter records the exception's class name, and operators and tests read
    "ValueError" there as "malformed data" (tests/integration/test_poison_events.py).
    """
    if event.type != model.event_type:
        raise ValueError(f"{event.type}: not {model.event_type} data")
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(f"{event.type}: {'; '.join(problems[:3])}{more}") from exc


def parse_event_data(event: Event) -> EventData:
    """The event's data as the model of its type (EVENT_DATA); ValueError for an unknown type or
    malformed data. For consumers that take several types: match on the returned class."""
    model = EVENT_DATA.get(event.type)
    if model is None:
        raise ValueError(f"{event.type}: no data model for this event type")
    return parse_data(event, model)


def new_typed_event(
    data: EventData,
    *,
    source: str,
    subject: str,
    correlation_id: str | None = None,
    causation: Event | None = None,
    time: datetime | None = None,
    data_version: int = 1,
    event_id: uuid.UUID | None = None,
    causation_id: str | None = None,
) -> Event:
    """shared.contracts.envelope.new_event with the type taken from the model and `data.to_data()`.

    `event_id` fixes the event's id when it was chosen before (a replayed revocation, a
    finalisation whose id is stored with its row); `causation_id` names the cause when only its
    id is at hand (a row), instead of `causation`.

    TypeError (a bug in the publisher, not bad input) when the model leaves out a field its
    publisher must write (EventData.optional_on_wire lists those it may leave out)."""
    missing = data.unset_fields()
    if missing:
        raise TypeError(f"{data.event_type}: the publisher must set {', '.join(missing)}")
    event = new_event(
        data.event_type,
        source=source,
        subject=subject,
        data=data.to_data(),
        correlation_id=correlation_id,
        causation=causation,
        time=time,
        data_version=data_version,
    )
    updates: dict[str, Any] = {}
    if event_id is not None:
        updates["id"] = event_id
        if correlation_id is None and causation is None:
            updates["correlation_id"] = str(event_id)  # as new_event does for an event that starts a chain
    if causation_id is not None:
        updates["causation_id"] = causation_id
    return event.model_copy(update=updates) if updates else event
