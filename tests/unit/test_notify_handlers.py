"""Notify's handlers over in-memory repositories (no database): which award events are announced,
the deliveries each event plans, dead letters, re-drives and revocations in one batch; and which
notices the finaliser makes final, with what event and webhook."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.notify import domain
from services.notify.domain import Announcement, Delivery
from services.notify.finaliser import domain as finalising
from services.notify.finaliser.domain import Finalized, Notice
from services.notify.finaliser.handlers import finalize_due
from services.notify.handlers import record_award_events
from services.notify.transparency.domain import Change
from shared.contracts.envelope import Event, new_event

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
NOTICE_PERIOD_SECONDS = 432_000


class FakeNotifyRepository:
    """Notify's tables as dicts, with the database's conflict rules: one delivery per (event,
    partner), one announcement per application and per decision, the first withdrawal stands."""

    def __init__(self) -> None:
        self.deliveries: dict[tuple[uuid.UUID, str], Delivery] = {}
        self.announcements: dict[str, Announcement] = {}
        self.withdrawn_by: dict[str, uuid.UUID] = {}
        self.events: list[tuple[Event, str]] = []
        self.logged: list[Change] = []

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self.deliveries.setdefault((d.event_id, d.partner_id), d)

    async def add_announcements(self, announcements: Sequence[Announcement]) -> set[uuid.UUID]:
        stored: set[uuid.UUID] = set()
        decided = {a.decided_event_id for a in self.announcements.values()}
        for a in announcements:
            if a.application_id in self.announcements or a.decided_event_id in decided:
                continue
            self.announcements[a.application_id] = a
            decided.add(a.decided_event_id)
            stored.add(a.decided_event_id)
        return stored

    async def withdraw_announcements(self, revoked_by: Mapping[str, uuid.UUID]) -> None:
        for app, event_id in revoked_by.items():
            if app in self.announcements:
                self.withdrawn_by.setdefault(app, event_id)

    async def add_events(self, events: Sequence[tuple[Event, str]]) -> None:
        self.events.extend(events)

    async def log_changes(self, changes: Sequence[Change]) -> None:
        self.logged.extend(changes)

    def delivered(self, app: str) -> list[str]:
        return [d.event_type for d in self.deliveries.values() if d.application_id == app]


def decided(status: str = "approved", awarded: str = "1000.00", partner: str = "ptn_1", **changes: Any) -> Event:
    app = "app_" + uuid.uuid4().hex
    data: dict[str, Any] = {
        "application_id": app, "partner_id": partner, "program": "GT-EQUITY", "year": 2024,
        "applicant": {"id": "91310115MA" + uuid.uuid4().hex[:8].upper(), "name": "上海某某生物科技有限公司"},
        "subject": "ROUND-2024-B", "status": status, "entitlement": awarded, "awarded": awarded,
        "limited_by": None, "reasons": [], "top_up_of": None, "draws": [], "catalog_version": "test",
    }
    data = {k: v for k, v in {**data, **changes}.items() if v is not None}
    return new_event("award.decided", source="grantline.ledger", subject=app, data=data)


def revoked(decision: Event) -> Event:
    d = decision.data
    return new_event(
        "award.revoked", source="grantline.ledger", subject=d["application_id"], causation=decision,
        data={"application_id": d["application_id"], "partner_id": d["partner_id"], "program": d["program"],
              "year": d["year"], "applicant": d["applicant"], "subject": d["subject"], "amount": d["awarded"],
              "reason": "fraud found", "revoked_by": "operator", "revoked_at": "2024-06-01T00:00:00+00:00"},
    )


def app_of(event: Event) -> str:
    return str(event.data["application_id"])


async def record(repo: FakeNotifyRepository, events: Sequence[Event]) -> list[tuple[Event, str]]:
    dead: list[tuple[Event, str]] = []
    await record_award_events(
        repo, events, lambda e, err: dead.append((e, str(err))), notice_period_seconds=NOTICE_PERIOD_SECONDS, now=NOW
    )
    return dead


# --- the award consumer -----------------------------------------------------------------------


# The rule itself (status and amount) is domain.should_announce's, tested at its cases in
# test_notify_domain.py; here, that the handler announces and publishes exactly what it allows.
@pytest.mark.parametrize(
    ("status", "awarded", "announced"),
    [("partially_approved", "400000.00", True), ("partially_approved", "0.00", False), ("rejected", "0.00", False)],
)
async def test_which_decisions_are_announced_and_published(status: str, awarded: str, announced: bool) -> None:
    repo = FakeNotifyRepository()
    event = decided(status, awarded)
    assert await record(repo, [event]) == []

    assert repo.delivered(app_of(event)) == ["award.decided"]  # every decision reaches its partner
    assert (app_of(event) in repo.announcements) is announced
    assert [(e.type, e.subject) for e, _ in repo.events] == ([("announcement.published", app_of(event))]
                                                              if announced else [])


async def test_the_announcement_and_its_published_event() -> None:
    repo = FakeNotifyRepository()
    event = decided("partially_approved", "400000.00")
    await record(repo, [event])

    a = repo.announcements[app_of(event)]
    assert (a.amount_fen, a.published_at, a.notice_ends_at) == (40_000_000, NOW, NOW + timedelta(days=5))
    assert (a.applicant_id, a.partner_id, a.decided_event_id) == (event.data["applicant"]["id"], "ptn_1", event.id)
    [(published, key)] = repo.events
    assert key == a.applicant_id  # the applicant's events stay on one partition
    assert published.id == a.published.id and published.time == NOW
    assert (published.causation_id, published.correlation_id) == (str(event.id), event.correlation_id)
    assert published.data["amount"] == "400000.00" and published.data["notice_ends_at"] == "2024-05-06T08:00:00+00:00"


async def test_each_award_event_plans_one_delivery_with_the_signed_body() -> None:
    repo = FakeNotifyRepository()
    approved, rejected = decided("approved", partner="ptn_a"), decided("rejected", "0.00", partner="ptn_b")
    revocation = revoked(approved)
    reviewed = new_event("award.reviewed", source="grantline.ledger", subject=app_of(approved), data={})
    await record(repo, [approved, rejected, revocation, reviewed])

    assert sorted((d.event_type, d.partner_id) for d in repo.deliveries.values()) == [
        ("award.decided", "ptn_a"), ("award.decided", "ptn_b"), ("award.revoked", "ptn_a")]
    sent = repo.deliveries[(revocation.id, "ptn_a")]
    assert orjson.loads(sent.body) == {"id": str(revocation.id), "type": "award.revoked",
                                       "application_id": app_of(approved), "data": revocation.data}


async def test_the_webhook_forwards_the_data_byte_for_byte_and_the_notice_is_written_in_wire_order() -> None:
    repo = FakeNotifyRepository()
    event = decided()
    scrambled = {"note": "a key from a newer ledger", **dict(reversed(list(event.data.items())))}
    event = event.model_copy(update={"data": scrambled})
    await record(repo, [event])

    [sent] = repo.deliveries.values()
    assert sent.body.encode() == orjson.dumps({"id": str(event.id), "type": "award.decided",
                                               "application_id": app_of(event), "data": scrambled})
    [(published, _)] = repo.events
    assert list(published.data) == ["application_id", "partner_id", "program", "year", "applicant_name", "subject",
                                    "amount", "published_at", "notice_ends_at", "announcement_id"]


async def test_a_malformed_event_is_dead_lettered_before_anything_is_written() -> None:
    repo = FakeNotifyRepository()
    good = decided()
    bad = [decided(partner_id=None), decided(applicant="上海某某"), decided(year="MMXXIV"), decided(year=2**31),
           decided(subject=None), decided(status="bogus")]
    dead = await record(repo, [bad[0], good, *bad[1:]])

    assert [e.id for e, _ in dead] == [e.id for e in bad]
    assert "partner_id" in dead[0][1] and "applicant" in dead[1][1] and "MMXXIV" in dead[2][1]
    assert "out of range" in dead[3][1] and "subject" in dead[4][1] and "bogus" in dead[5][1]
    assert {d.application_id for d in repo.deliveries.values()} == {app_of(good)}
    assert list(repo.announcements) == [app_of(good)]


async def test_a_redriven_decision_is_not_announced_twice() -> None:
    repo = FakeNotifyRepository()
    event = decided()
    await record(repo, [event])
    await record(repo, [event])  # the same event again (as if the inbox had lost it)
    second = event.model_copy(update={"id": uuid.uuid4()})  # a second decision for the application
    await record(repo, [second])

    assert [e.subject for e, _ in repo.events] == [app_of(event)]
    assert repo.announcements[app_of(event)].decided_event_id == event.id
    assert repo.delivered(app_of(event)) == ["award.decided", "award.decided"]  # partners hear of both


async def test_revocations_withdraw_in_order_within_one_batch() -> None:
    repo = FakeNotifyRepository()
    kept, gone = decided(), decided()
    first, again = revoked(gone), revoked(gone)
    resent = gone.model_copy(update={"id": uuid.uuid4()})  # a decision re-sent after its revocation
    await record(repo, [kept, gone, first, again, resent])

    assert repo.withdrawn_by == {app_of(gone): first.id}  # the first revocation is the one recorded
    assert [e.subject for e, _ in repo.events] == [app_of(kept), app_of(gone)]
    assert sorted(repo.delivered(app_of(gone))) == ["award.decided", "award.decided", "award.revoked",
                                                    "award.revoked"]


def test_a_decision_after_a_revocation_starts_a_new_run() -> None:
    gone = decided()
    plans = [domain.plan_award_event(e, notice_ends_at=NOW + timedelta(seconds=60), now=NOW)
             for e in (gone, revoked(gone), gone.model_copy(update={"id": uuid.uuid4()}), decided())]
    runs = domain.in_order_runs([p for p in plans if p is not None])
    assert [len(run) for run in runs] == [2, 2]


# --- the finaliser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notice", "final"),
    [
        (Notice(notice_ends_at=NOW), True),  # the notice ends at its last instant
        (Notice(notice_ends_at=NOW - timedelta(days=1)), True),
        (Notice(notice_ends_at=NOW + timedelta(microseconds=1)), False),
        (Notice(notice_ends_at=NOW - timedelta(days=1), withdrawn_at=NOW - timedelta(days=2)), False),
        (Notice(notice_ends_at=NOW - timedelta(days=1), finalized_at=NOW - timedelta(hours=1)), False),
    ],
)
def test_when_a_notice_ends_in_finalisation(notice: Notice, final: bool) -> None:
    assert finalising.finalisable(notice, NOW) is final


class FakeFinaliserRepository(FakeNotifyRepository):
    """Announcements with their notice state; `finalize_due` applies the rule as the statement does."""

    def __init__(self, now: datetime) -> None:
        super().__init__()
        self.now = now
        self.notices: dict[str, Notice] = {}
        self.finalized_ids: dict[str, uuid.UUID] = {}

    def announce(self, decision: Event, notice: Notice) -> None:
        plan = domain.plan_award_event(decision, notice_ends_at=NOW + timedelta(seconds=60), now=NOW)
        assert plan is not None and plan.announcement is not None
        self.announcements[app_of(decision)] = plan.announcement
        self.notices[app_of(decision)] = notice

    async def finalize_due(self, limit: int, *, announcement_id: str | None = None) -> list[Finalized]:
        due = sorted((n.notice_ends_at, app) for app, n in self.notices.items() if finalising.finalisable(n, self.now))
        done = []
        for _, app in due[:limit]:
            self.notices[app] = replace(self.notices[app], finalized_at=self.now)
            self.finalized_ids[app] = uuid.uuid4()
            done.append(self.finalized(app))
        return done

    def finalized(self, app: str) -> Finalized:
        a, n = self.announcements[app], self.notices[app]
        assert n.finalized_at is not None
        return Finalized(
            application_id=app, partner_id=a.partner_id, applicant_id=a.applicant_id, program=a.program,
            year=a.year, subject=a.subject, amount_fen=a.amount_fen, notice_ends_at=n.notice_ends_at,
            finalized_at=n.finalized_at, finalized_event_id=self.finalized_ids[app],
            decided_event_id=a.decided_event_id, correlation_id=a.correlation_id,
        )


async def test_the_finaliser_finalises_ended_notices_once_with_event_and_webhook() -> None:
    later = NOW + timedelta(days=6)
    repo = FakeFinaliserRepository(now=later)
    ended, running, withdrawn, final = decided(partner="ptn_f"), decided(), decided(), decided()
    repo.announce(ended, Notice(notice_ends_at=NOW + timedelta(days=5)))
    repo.announce(running, Notice(notice_ends_at=later + timedelta(seconds=1)))
    repo.announce(withdrawn, Notice(notice_ends_at=NOW, withdrawn_at=NOW))
    repo.announce(final, Notice(notice_ends_at=NOW, finalized_at=NOW))

    [event] = await finalize_due(repo)

    assert (event.type, event.subject, event.id) == ("award.finalized", app_of(ended), repo.finalized_ids[app_of(ended)])
    assert (event.causation_id, event.correlation_id) == (str(ended.id), ended.correlation_id)
    assert event.data == {"application_id": app_of(ended), "partner_id": "ptn_f", "program": "GT-EQUITY",
                          "year": 2024, "subject": "ROUND-2024-B", "amount": "1000.00",
                          "finalized_at": later.isoformat()}
    assert repo.events == [(event, ended.data["applicant"]["id"])]
    [delivery] = repo.deliveries.values()
    assert (delivery.event_id, delivery.partner_id, delivery.application_id) == (event.id, "ptn_f", app_of(ended))
    assert orjson.loads(delivery.body)["data"] == event.data

    assert await finalize_due(repo) == []  # final at most once
    assert len(repo.events) == 1 and len(repo.deliveries) == 1


async def test_the_finaliser_checks_the_statements_answer_against_the_rule() -> None:
    repo = FakeFinaliserRepository(now=NOW)
    early = decided()
    repo.announce(early, Notice(notice_ends_at=NOW + timedelta(days=1)))

    async def wrong(limit: int, *, announcement_id: str | None = None) -> list[Finalized]:  # forgot the notice period
        repo.notices[app_of(early)] = replace(repo.notices[app_of(early)], finalized_at=NOW)
        repo.finalized_ids[app_of(early)] = uuid.uuid4()
        return [repo.finalized(app_of(early))]

    repo.finalize_due = wrong  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match=app_of(early)):
        await finalize_due(repo)
