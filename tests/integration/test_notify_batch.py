"""Notify's set-based award consumer against real PostgreSQL: a batch of decisions becomes
exactly one delivery each and the right announcements; a malformed event is dead-lettered on
its own while its neighbours go on; re-driven copies add nothing; revocations withdraw."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.app import subscriptions
from services.notify.dispatcher.handlers import Dispatcher
from services.notify.domain import delivery_for
from services.notify.repository import SqlNotifyRepository
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.topics import AWARDS, DLQ
from shared.messaging.consumer import ConsumerLoop, Subscription
from tests.support.notify import decided, revoked, scratch_schema
from tests.support.receiver import scripted_receiver
from tests.support.records import FakeRecord
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A notify schema of its own: no running notify instance reads it."""
    async with scratch_schema(settings, prefix="notify_batch_") as scratch:
        yield scratch


def awards_loop(maker: async_sessionmaker[AsyncSession], settings: Settings, name: str) -> ConsumerLoop:
    """The awards subscription exactly as the notify app wires it, under its own inbox name."""
    ctx: Any = SimpleNamespace(settings=settings)
    [awards] = [s for s in subscriptions(ctx) if s.name == "awards"]
    return ConsumerLoop(
        service="notify",
        subscription=Subscription(name=name, topics=awards.topics, handle=awards.handle,
                                  only_types=awards.only_types),
        maker=maker,
        bootstrap=settings.kafka_bootstrap_servers,
    )


async def process(loop: ConsumerLoop, events: list[Event], first_offset: int = 0) -> None:
    await loop.process([FakeRecord(e.to_bytes(), first_offset + i, topic=AWARDS) for i, e in enumerate(events)])  # type: ignore[arg-type]


async def deliveries(maker: async_sessionmaker[AsyncSession], app_ids: set[str]) -> dict[str, list[str]]:
    async with maker() as session:
        rows = (await session.execute(
            text("SELECT application_id, event_type, body FROM deliveries WHERE application_id = ANY(:a) "
                 "ORDER BY created_at, event_type"), {"a": list(app_ids)})).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.application_id, []).append(row.event_type)
    return found


async def announcements(maker: async_sessionmaker[AsyncSession], app_ids: set[str]) -> dict[str, Any]:
    async with maker() as session:
        rows = (await session.execute(
            text("SELECT application_id, amount_fen, withdrawn_at IS NOT NULL AS withdrawn FROM announcements "
                 "WHERE application_id = ANY(:a)"), {"a": list(app_ids)})).all()
    return {r.application_id: (r.amount_fen, r.withdrawn) for r in rows}


async def published(maker: async_sessionmaker[AsyncSession], app_ids: set[str]) -> list[str]:
    async with maker() as session:
        rows = (await session.execute(
            text("SELECT subject FROM outbox WHERE type = 'announcement.published' AND subject = ANY(:a) "
                 "ORDER BY seq"), {"a": list(app_ids)})).all()
    return [r.subject for r in rows]


async def dead_offsets(maker: async_sessionmaker[AsyncSession], consumer: str) -> list[tuple[int, str]]:
    async with maker() as session:
        rows = (await session.execute(
            text("SELECT envelope FROM outbox WHERE topic = :t AND envelope->'data'->>'consumer' = :c ORDER BY seq"),
            {"t": DLQ, "c": consumer})).all()
    return [(r.envelope["data"]["offset"], r.envelope["data"]["error"]) for r in rows]


def malformed(partner: str, **changes: Any) -> Event:
    event, _ = decided(partner, status="approved", awarded="1000.00")
    data = {k: v for k, v in {**event.data, **changes}.items() if v is not None}
    return event.model_copy(update={"data": data})


def app_id(event: Event) -> str:
    return str(event.data["application_id"])


async def test_a_batch_of_decisions_is_written_set_based(
    maker: async_sessionmaker[AsyncSession], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    partner = "ptn_batch"
    approved = [decided(partner, status="approved", awarded=f"{1000 + i}.00")[0] for i in range(6)]
    rejected = [decided(partner, status="rejected", awarded="0.00")[0] for _ in range(4)]
    batch = [*[e for pair in zip(approved, rejected, strict=False) for e in pair], *approved[4:]]  # interleaved
    ids = {app_id(e) for e in batch}
    loop = awards_loop(maker, settings, "awards-batch")

    with caplog.at_level(logging.WARNING, logger="shared.messaging.consumer"):
        await process(loop, batch)
    assert "one event at a time" not in caplog.text  # the set-based path did it, no fallback

    assert await deliveries(maker, ids) == {app_id(e): ["award.decided"] for e in batch}
    assert await announcements(maker, ids) == {app_id(e): ((1000 + i) * 100, False)
                                               for i, e in enumerate(approved)}
    assert await published(maker, ids) == [app_id(e) for e in approved]  # in the batch's order

    # The same events under another inbox (as if the inbox had lost them): ON CONFLICT keeps
    # one delivery each, and the notices already stored are not published again.
    await process(awards_loop(maker, settings, "awards-batch-again"), batch, first_offset=100)
    assert await deliveries(maker, ids) == {app_id(e): ["award.decided"] for e in batch}
    assert await published(maker, ids) == [app_id(e) for e in approved]


async def test_a_malformed_event_is_dead_lettered_alone(
    maker: async_sessionmaker[AsyncSession], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    partner = "ptn_malformed"
    good = [decided(partner, status="approved", awarded="2000.00")[0] for _ in range(3)]
    no_partner = malformed(partner, partner_id=None)
    applicant_not_object = malformed(partner, applicant="上海某某")
    year_not_number = malformed(partner, year="MMXXIV")
    batch = [good[0], no_partner, good[1], applicant_not_object, year_not_number, good[2]]
    loop = awards_loop(maker, settings, "awards-malformed")

    with caplog.at_level(logging.WARNING, logger="shared.messaging.consumer"):
        await process(loop, batch, first_offset=10)
    assert "one event at a time" not in caplog.text

    dead = await dead_offsets(maker, "notify.awards-malformed")
    assert [offset for offset, _ in dead] == [11, 13, 14]
    assert "partner_id" in dead[0][1] and "applicant" in dead[1][1] and "MMXXIV" in dead[2][1]
    ids = {app_id(e) for e in batch}
    assert await deliveries(maker, ids) == {app_id(e): ["award.decided"] for e in good}
    assert set(await announcements(maker, ids)) == {app_id(e) for e in good}
    assert await published(maker, ids) == [app_id(e) for e in good]


async def test_revocations_in_the_batch_withdraw_in_order(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    partner = "ptn_revoke"
    kept, _ = decided(partner, status="approved", awarded="3000.00")
    gone, _ = decided(partner, status="approved", awarded="4000.00")
    # A re-sent decision after its revocation (new event id, same application): per event, it
    # conflicts with the stored notice, which stays withdrawn; the batch must agree.
    resent = gone.model_copy(update={"id": uuid.uuid4()})
    batch = [kept, gone, revoked(gone), revoked(gone), resent]
    loop = awards_loop(maker, settings, "awards-revoke")
    await process(loop, batch, first_offset=20)

    ids = {app_id(kept), app_id(gone)}
    assert await announcements(maker, ids) == {app_id(kept): (300000, False), app_id(gone): (400000, True)}
    assert await published(maker, ids) == [app_id(kept), app_id(gone)]
    found = await deliveries(maker, ids)
    assert found[app_id(kept)] == ["award.decided"]
    assert sorted(found[app_id(gone)]) == ["award.decided", "award.decided", "award.revoked", "award.revoked"]
    async with maker() as session:
        withdrawn_by = await session.scalar(
            text("SELECT withdrawn_event_id FROM announcements WHERE application_id = :a"), {"a": app_id(gone)})
    assert withdrawn_by == batch[2].id  # the first revocation is the one recorded


async def test_two_dispatchers_share_a_backlog_and_send_each_delivery_once(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Batched claims and batched records: two dispatchers on one table, a backlog of many
    deliveries across partners; each is sent once, recorded with one attempt, and counted."""
    s = settings.model_copy(update={"allow_private_callbacks": True})
    n_partners, per_partner = 3, 40
    async with scripted_receiver() as hook:
        partners = [f"ptn_two_{i}" for i in range(n_partners)]
        async with maker() as session, session.begin():
            for p in partners:
                await session.execute(
                    text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES (:p, 'p', :u, :h)"),
                    {"p": p, "u": hook.url, "h": secrets.token_hex(32)})
            await SqlNotifyRepository(session).add_deliveries([
                delivery_for(uuid.uuid4(), "award.decided", f"app_two_{p}_{i}", p, {"i": i})
                for p in partners for i in range(per_partner)])
        dispatchers = [Dispatcher(maker, s, timeout_s=2.0, poll_s=0.02, per_partner_concurrency=2)
                       for _ in range(2)]
        tasks = [asyncio.create_task(d.run()) for d in dispatchers]
        try:
            async def all_delivered() -> bool:
                async with maker() as session:
                    left = await session.scalar(text(
                        "SELECT count(*) FROM deliveries WHERE partner_id LIKE 'ptn_two_%' "
                        "AND status <> 'delivered'"))
                return left == 0

            await eventually(all_delivered, timeout_s=30, what="the whole backlog delivered")
        finally:
            for d in dispatchers:
                d.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        ids = [r.json["id"] for r in hook.requests]
        assert len(ids) == len(set(ids)) == n_partners * per_partner
        assert sum(d.sent for d in dispatchers) == n_partners * per_partner
        async with maker() as session:
            attempts = (await session.execute(text(
                "SELECT d.attempts, count(a.id) AS recorded, min(a.outcome) AS outcome FROM deliveries d "
                "JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.partner_id LIKE 'ptn_two_%' "
                "GROUP BY d.id"))).all()
        assert len(attempts) == n_partners * per_partner
        assert {(r.attempts, r.recorded, r.outcome) for r in attempts} == {(1, 1, "delivered")}
