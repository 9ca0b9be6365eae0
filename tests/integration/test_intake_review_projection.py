"""Intake's projection of review (核定) and objections (异议), over the real broker and database:
award.decided pending_review → `pending_review` with what is held; award.reviewed (approved,
reduced) → `partially_approved` with the review block, which a late pending decision does not
undo; announcement.published → the announcement with its id; objection.filed / .resolved →
`objections_open`; all of them in the timeline. The objector's name, contact and statement reach
none of intake's tables and none of its answers. And migration 0007 on rows from before it."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from alembic import command
from sqlalchemy import text

from services.intake.app import create_app
from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.topics import ANNOUNCEMENTS, AWARDS
from shared.db.engine import make_engine
from shared.db.migrate import alembic_config
from tests.support.apps import running
from tests.support.auth import OP, partner_headers
from tests.support.intake import equity, fetch_until, new_partner
from tests.support.kafka import publish
from tests.support.policy import publish_sample_calls
from tools.samples import ENTERPRISE

pytestmark = pytest.mark.integration

REVIEWER = {"id": "stf_reviewer", "name": "张三"}


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        await publish_sample_calls(settings, c)
        yield c


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def at(t0: datetime, seconds: int) -> datetime:
    return t0 + timedelta(seconds=seconds)


async def intake_rows_holding(settings: Settings, needle: str) -> dict[str, int]:
    """Every table of intake's schema whose rows, as text, contain `needle`, with how many do."""
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            tables = (await conn.scalars(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intake' "
                "AND table_type = 'BASE TABLE'"))).all()
            found = {}
            for table in tables:
                n = await conn.scalar(text(f'SELECT count(*) FROM intake."{table}" AS r WHERE r::text LIKE :p'),
                                      {"p": f"%{needle}%"})
                if n:
                    found[table] = int(n)
            return found
    finally:
        await engine.dispose()


async def test_review_announcement_and_objections_reach_the_partners_view(
    client: httpx.AsyncClient, settings: Settings, producer: AIOKafkaProducer
) -> None:
    partner = await new_partner(client, "Reviewed")
    headers = partner_headers(partner)
    r = await client.post("/v1/applications", json=equity("REVIEWED-1"), headers=partner_headers(partner, "rv1"))
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]
    url = f"/v1/applications/{app_id}"
    about = {"application_id": app_id, "partner_id": partner["id"], "program": "GT-EQUITY", "year": 2024,
             "applicant": {"id": ENTERPRISE, "name": "上海某某生物科技有限公司"}, "subject": "REVIEWED-1"}
    t0 = datetime.now(UTC) + timedelta(seconds=1)

    async def send(topic: str, event: Event) -> Event:
        await publish(producer, settings, topic, event, ENTERPRISE)
        return event

    def pending_decision(time: datetime) -> Event:
        return new_event("award.decided", source="grantline.ledger", subject=app_id, time=time, data={
            **about, "status": "pending_review", "entitlement": "1600000.00", "awarded": "0.00",
            "limited_by": None, "reasons": [], "top_up_of": None, "draws": [], "catalog_version": None,
            "held": "1600000.00", "review": "required"})

    # -- pending_review: the hold shows, no review yet, and the list's filter finds it
    decided = await send(AWARDS, pending_decision(at(t0, 1)))
    pending = await fetch_until(client, url, headers, lambda b: b.get("status") == "pending_review")
    assert pending["decision"] == {"entitlement": "1600000.00", "held": "1600000.00", "awarded": "0.00",
                                   "limited_by": None, "reasons": [], "review": None}
    listed = (await client.get("/v1/applications", params={"status": "pending_review"}, headers=headers)).json()
    assert [a["id"] for a in listed["items"]] == [app_id]
    approved = (await client.get("/v1/applications", params={"status": "approved"}, headers=headers)).json()
    assert approved["items"] == []

    # -- approved reduced: partially_approved with the review block; a late pending decision changes nothing
    reduced = {"code": "REVIEW_REDUCED", "message": "核定金额低于暂挂金额", "citation": None}
    reviewed = await send(AWARDS, new_event(
        "award.reviewed", source="grantline.ledger", subject=app_id, time=at(t0, 2), causation=decided, data={
            **about, "decision": "approve", "status": "partially_approved", "held": "1600000.00",
            "awarded": "1000000.00", "released": "600000.00", "limited_by": None, "reasons": [reduced],
            "reviewed_by": REVIEWER, "reason": "专家评审核定", "reviewed_at": at(t0, 2).isoformat(), "draws": []}))
    late = await send(AWARDS, pending_decision(at(t0, 3)))

    # -- the 公示 and two objections, one dismissed
    token = secrets.token_hex(4)
    objector = {"name": f"李四{token}", "organisation": f"某某协会{token}", "contact": f"138{token}",
                "statement": f"申报材料不实{token}"}
    common = {"announcement_id": f"ann_{token}", "application_id": app_id}
    published = await send(ANNOUNCEMENTS, new_event(
        "announcement.published", source="grantline.notify", subject=app_id, time=at(t0, 4), causation=reviewed,
        data={**about, "applicant_name": "上海某某生物科技有限公司", "amount": "1000000.00",
              "published_at": at(t0, 4).isoformat(), "notice_ends_at": at(t0, 600).isoformat(),
              "announcement_id": f"ann_{token}"}))
    filed = [await send(ANNOUNCEMENTS, new_event(
        "objection.filed", source="grantline.notify", subject=app_id, time=at(t0, 5 + i), causation=published,
        data={"objection_id": f"obj_{i}{token}", **common, **objector, "filed_at": at(t0, 5 + i).isoformat()}))
        for i in range(2)]
    resolved = await send(ANNOUNCEMENTS, new_event(
        "objection.resolved", source="grantline.notify", subject=app_id, time=at(t0, 7), causation=filed[0], data={
            "objection_id": f"obj_0{token}", **common, "partner_id": partner["id"], "outcome": "dismissed",
            "reason": "经核查不成立", "resolved_by": REVIEWER, "resolved_at": at(t0, 7).isoformat()}))

    body = await fetch_until(client, url, headers, lambda b: len(b.get("timeline", [])) == 8, timeout_s=30)
    assert body["status"] == "partially_approved", "the late pending decision does not undo the review"
    assert body["decision"] == {
        "entitlement": "1600000.00", "held": "1600000.00", "awarded": "1000000.00", "limited_by": None,
        "reasons": [reduced],
        "review": {"decision": "approve", "amount": "1000000.00", "by": REVIEWER, "reason": "专家评审核定",
                   "at": at(t0, 2).isoformat()},
    }
    assert body["announcement"] == {"id": f"ann_{token}", "published_at": at(t0, 4).isoformat(),
                                    "notice_ends_at": at(t0, 600).isoformat(), "objections_open": 1,
                                    "finalized_at": None}
    assert [(e["type"], e["event_id"]) for e in body["timeline"]][1:] == [
        ("award.decided", str(decided.id)), ("award.reviewed", str(reviewed.id)), ("award.decided", str(late.id)),
        ("announcement.published", str(published.id)), ("objection.filed", str(filed[0].id)),
        ("objection.filed", str(filed[1].id)), ("objection.resolved", str(resolved.id)),
    ]

    # -- the event history shows each objection, without who objected or what they said
    history = (await client.get(f"{url}/events", headers=OP)).json()["items"]
    shown_filed = [e for e in history if e["type"] == "objection.filed"]
    assert [e["id"] for e in shown_filed] == [str(f.id) for f in filed]
    assert shown_filed[0]["data"] == {"objection_id": f"obj_0{token}", **common,
                                      "filed_at": at(t0, 5).isoformat()}
    answers = [(await client.get(path, headers=h)).text
               for path in (url, f"{url}/events", "/v1/applications") for h in (headers, OP)]
    for value in objector.values():
        assert all(value not in answer for answer in answers), value
        assert await intake_rows_holding(settings, value) == {}, value
    # (what intake does keep of the objections: their ids and states, nothing else)
    stored = await intake_rows_holding(settings, f"obj_1{token}")
    assert set(stored) == {"applications", "timeline"}


# -- migration 0007 on rows projected before it ------------------------------------------------

OLD_ROWS = [
    # (id, status, rank before 0007, decision, announcement)
    ("app_m_received", "received", 0, None, None),
    ("app_m_ineligible", "ineligible", 1,
     {"entitlement": "0.00", "awarded": "0.00", "limited_by": None, "reasons": []}, None),
    ("app_m_approved", "approved", 2,
     {"entitlement": "1600000.00", "awarded": "1600000.00", "limited_by": None, "reasons": []},
     {"published_at": "2024-06-01T09:30:00+00:00", "notice_ends_at": "2024-06-08T09:00:00+00:00",
      "finalized_at": None}),
    ("app_m_revoked", "revoked", 3,
     {"entitlement": "1600000.00", "awarded": "0.00", "revoked_awarded": "400000.00", "limited_by": None,
      "reasons": []}, None),
]


async def test_migration_0007_renumbers_ranks_and_gives_old_rows_the_contracts_keys(db_url: str) -> None:
    schema = f"intake_m7_{uuid.uuid4().hex[:8]}"
    cfg = alembic_config(db_url, "intake", schema)
    command.upgrade(cfg, "0006")
    engine = make_engine(db_url, schema)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO partners (id, name, callback_url, api_key_hash) "
                                    "VALUES ('ptn_m', 'P', 'https://x', 'h')"))
            for app_id, status, rank, decision, announcement in OLD_ROWS:
                await conn.execute(text(
                    "INSERT INTO applications (id, partner_id, program, year, applicant_id, subject, status, "
                    "status_rank, input, decision, announcement) VALUES (:id, 'ptn_m', 'GT-EQUITY', 2024, :ent, "
                    "'S', :st, :rk, '{}', CAST(:d AS jsonb), CAST(:an AS jsonb))"),
                    {"id": app_id, "ent": ENTERPRISE, "st": status, "rk": rank,
                     "d": orjson.dumps(decision).decode() if decision else None,
                     "an": orjson.dumps(announcement).decode() if announcement else None})
        command.upgrade(cfg, "head")

        async with engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(text(
                "SELECT id, status_rank, decision, announcement, objections FROM applications"))).all()}
        assert {a: r.status_rank for a, r in rows.items()} == {
            "app_m_received": 0, "app_m_ineligible": 1, "app_m_approved": 3, "app_m_revoked": 4}
        assert {a: (r.decision or {}).get("held") for a, r in rows.items()} == {
            "app_m_received": None, "app_m_ineligible": "0.00", "app_m_approved": "1600000.00",
            "app_m_revoked": "400000.00"}
        assert all(r.decision is None or r.decision["review"] is None for r in rows.values())
        old_announcement = OLD_ROWS[2][4]
        assert rows["app_m_approved"].announcement == {**(old_announcement or {}), "id": None, "objections_open": 0}
        assert all(r.objections == {} for r in rows.values())

        async with engine.begin() as conn:  # the CHECK admits pending_review now
            await conn.execute(text("UPDATE applications SET status = 'pending_review', status_rank = 2 "
                                    "WHERE id = 'app_m_received'"))
            await conn.execute(text("UPDATE applications SET status = 'received', status_rank = 0 "
                                    "WHERE id = 'app_m_received'"))
        command.downgrade(cfg, "0006")
        async with engine.connect() as conn:
            back = {r.id: (r.status_rank, r.decision, r.announcement) for r in (await conn.execute(text(
                "SELECT id, status_rank, decision, announcement FROM applications"))).all()}
        assert back == {app_id: (rank, decision, announcement) for app_id, _, rank, decision, announcement in OLD_ROWS}
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
