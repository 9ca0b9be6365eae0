"""Staff accounts (CONTRACT.md, "Who may call what"): an admin registers staff members with roles
(intake, POST /v1/staff), their keys work in every service as far as their roles go, and a
deactivated key is refused by all four services within seconds.

The four services run in process together with their own lifespans (the replicas of the staff
directory are kept from staff.registered / staff.deactivated on grantline.partners).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import Actor, StaffDeactivated, StaffRegistered, new_typed_event
from shared.contracts.topics import PARTNERS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.directory import apply_directory_event, find_credential
from tests.support.apps import running_services
from tests.support.auth import AUD, OP, bearer, partner_headers
from tests.support.intake import new_partner
from tests.support.kafka import publish
from tests.support.policy import call_body, open_call, sample_terms, wait_for_calls
from tests.support.waiting import eventually
from tools.samples import make_body

pytestmark = pytest.mark.integration

SERVICES = ("intake", "eligibility", "ledger", "notify")
ROLES = ("admin", "operator", "reviewer", "payment_officer", "auditor")


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    staff_settings = settings.model_copy(update={"allow_private_callbacks": True, "partner_rate_per_second": 0.0})
    async with running_services(staff_settings) as clients:
        yield clients


async def register(intake: httpx.AsyncClient, name: str, roles: list[str], headers: dict[str, str] = OP) -> Any:
    r = await intake.post("/v1/staff", json={"name": name, "roles": roles}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def known_everywhere(stack: dict[str, httpx.AsyncClient], key: str) -> None:
    """Until every service knows the key: any answer but 401 (a 403 is a known key without the role)."""
    for name in SERVICES:
        await eventually(
            lambda c=stack[name]: c.get("/v1/dead-letters", headers=bearer(key)),
            f"{name} knows the staff key", until=lambda r: r.status_code != 401,
        )


async def intake_rows(settings: Settings, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


# -- registering -----------------------------------------------------------------------------------


async def test_admin_registers_a_reviewer_whose_key_works_where_the_role_allows(
    stack: dict[str, httpx.AsyncClient],
) -> None:
    intake = stack["intake"]
    admin = await register(intake, "管理员", ["admin"])
    reviewer = await register(intake, "张三", ["reviewer"], headers=bearer(admin["api_key"]))
    assert set(reviewer) == {"id", "name", "roles", "api_key"}
    assert reviewer["id"].startswith("stf_") and reviewer["api_key"].startswith("gls_")
    assert reviewer["name"] == "张三" and reviewer["roles"] == ["reviewer"]

    key = bearer(reviewer["api_key"])
    # Staff of any role see every application; what is an admin's or an operator's is refused.
    assert (await intake.get("/v1/applications", headers=key)).status_code == 200
    assert (await intake.post("/v1/staff", json={"name": "x", "roles": ["admin"]}, headers=key)).status_code == 403
    partner_body = {"name": "P", "callback_url": "https://93.184.216.34/hook"}
    assert (await intake.post("/v1/partners", json=partner_body, headers=key)).status_code == 403
    for name in SERVICES:
        r = await eventually(
            lambda c=stack[name]: c.get("/v1/dead-letters", headers=key),
            f"{name} knows the reviewer", until=lambda r: r.status_code != 401,
        )
        assert r.status_code == 403, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    # Who registered whom is recorded with the name.
    listed = (await intake.get("/v1/staff", headers=AUD, params={"limit": 200})).json()["items"]
    shown = next(m for m in listed if m["id"] == reviewer["id"])
    assert shown["registered_by"] == {"id": admin["id"], "name": "管理员"}
    assert shown["active"] is True and shown["deactivation"] is None and shown["roles"] == ["reviewer"]


async def test_roles_are_kept_once_each_in_the_contracts_order(stack: dict[str, httpx.AsyncClient]) -> None:
    member = await register(stack["intake"], "李四", ["auditor", "reviewer", "auditor"])
    assert member["roles"] == ["reviewer", "auditor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "王五", "roles": ["reviewer", "superuser"]}, "roles"),
        ({"name": "王五", "roles": ["partner"]}, "roles"),
        ({"name": "王五", "roles": []}, "roles"),
        ({"name": "王五"}, "roles"),
        ({"name": "", "roles": ["reviewer"]}, "name"),
        ({"name": "   ", "roles": ["reviewer"]}, "name"),
        ({"roles": ["reviewer"]}, "name"),
        ({"name": "王五", "roles": ["reviewer"], "api_key": "gls_mine"}, "api_key"),
    ],
)
async def test_bad_registrations_are_422_naming_the_field(
    stack: dict[str, httpx.AsyncClient], body: dict[str, Any], field: str
) -> None:
    r = await stack["intake"].post("/v1/staff", json=body, headers=OP)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_a_registration_that_is_not_json_is_415(stack: dict[str, httpx.AsyncClient]) -> None:
    r = await stack["intake"].post("/v1/staff", content=b"name=x", headers={**OP, "Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_the_key_is_shown_once_and_stored_hashed(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    intake = stack["intake"]
    member = await register(intake, "赵六", ["operator"])
    key, key_hash = member["api_key"], hashlib.sha256(member["api_key"].encode()).hexdigest()
    rows = await intake_rows(settings, "SELECT * FROM staff WHERE id = :i", i=member["id"])
    assert len(rows) == 1 and rows[0].api_key_hash == key_hash
    assert key not in repr(tuple(rows[0]))
    # The event carries the hash only; no list shows the key or its hash.
    (event,) = await intake_rows(
        settings, "SELECT envelope::text FROM outbox WHERE subject = :i AND type = 'staff.registered'", i=member["id"]
    )
    assert key not in event[0] and key_hash in event[0]
    cursor: str | None = None
    seen = False
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await intake.get("/v1/staff", headers=OP, params=params)
        assert page.status_code == 200
        assert key not in page.text and key_hash not in page.text
        seen = seen or any(m["id"] == member["id"] for m in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen


async def test_the_list_pages_newest_first_with_a_bounded_limit(stack: dict[str, httpx.AsyncClient]) -> None:
    intake = stack["intake"]
    made = [(await register(intake, f"分页{i}", ["auditor"]))["id"] for i in range(3)]
    listed: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await intake.get("/v1/staff", headers=AUD, params=params)).json()
        assert len(page["items"]) <= 1
        listed += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(listed) == len(set(listed))
    assert [i for i in listed if i in made] == made[::-1]
    assert (await intake.get("/v1/staff", headers=AUD, params={"limit": 201})).status_code == 422
    assert (await intake.get("/v1/staff", headers=AUD, params={"limit": 0})).status_code == 422
    bad = await intake.get("/v1/staff", headers=AUD, params={"cursor": "bm90LW91cnM"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


# -- who may call what -----------------------------------------------------------------------------


async def test_every_staff_endpoint_checks_the_role(stack: dict[str, httpx.AsyncClient]) -> None:
    intake = stack["intake"]
    members = {role: await register(intake, f"角色 {role}", [role]) for role in ROLES}
    partner = await new_partner(intake, "A partner", "https://93.184.216.34/hook")
    callers: dict[str, dict[str, str]] = {
        **{role: bearer(m["api_key"]) for role, m in members.items()},
        "bootstrap operator": OP,
        "bootstrap auditor": AUD,
        "partner": partner_headers(partner),
        "nobody": {},
        "unknown key": bearer("gls_" + uuid.uuid4().hex),
    }
    may_write = {"admin", "bootstrap operator"}
    may_list = may_write | {"auditor", "bootstrap auditor"}
    for caller, headers in callers.items():
        anonymous = caller in ("nobody", "unknown key")
        r = await intake.post("/v1/staff", json={"name": f"by {caller}", "roles": ["reviewer"]}, headers=headers)
        assert r.status_code == (401 if anonymous else 201 if caller in may_write else 403), (caller, r.text)
        r = await intake.get("/v1/staff", headers=headers)
        assert r.status_code == (401 if anonymous else 200 if caller in may_list else 403), (caller, r.text)
        # An unknown member: 404 once the role is checked, so nothing is deactivated here.
        r = await intake.post("/v1/staff/stf_nobody/deactivate", json={"reason": "test"}, headers=headers)
        assert r.status_code == (401 if anonymous else 404 if caller in may_write else 403), (caller, r.text)


async def test_an_auditor_creates_nothing(stack: dict[str, httpx.AsyncClient]) -> None:
    intake = stack["intake"]
    auditor = await register(intake, "审计", ["auditor"])
    target = await register(intake, "被停用者", ["reviewer"])
    for headers in (AUD, bearer(auditor["api_key"])):
        r = await intake.post("/v1/staff", json={"name": "x", "roles": ["admin"]}, headers=headers)
        assert r.status_code == 403
        r = await intake.post(f"/v1/staff/{target['id']}/deactivate", json={"reason": "x"}, headers=headers)
        assert r.status_code == 403
    listed = (await intake.get("/v1/staff", headers=AUD, params={"limit": 200})).json()["items"]
    assert next(m for m in listed if m["id"] == target["id"])["active"] is True
    assert not any(m["name"] == "x" for m in listed)


# -- deactivating ----------------------------------------------------------------------------------


async def test_deactivation_is_recorded_once_with_who_and_why(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    intake = stack["intake"]
    admin = await register(intake, "管理员乙", ["admin"])
    member = await register(intake, "离职者", ["reviewer"])
    path = f"/v1/staff/{member['id']}/deactivate"
    assert (await intake.post(path, json={}, headers=OP)).status_code == 422  # the reason is required
    first = await intake.post(path, json={"reason": "调岗"}, headers=bearer(admin["api_key"]))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["id"] == member["id"] and body["active"] is False
    assert body["deactivation"]["by"] == {"id": admin["id"], "name": "管理员乙"}
    assert body["deactivation"]["reason"] == "调岗" and body["deactivation"]["at"]
    # Again: nothing changes (the first deactivation's who, why and when stand) and nothing is published.
    again = await intake.post(path, json={"reason": "再次"}, headers=OP)
    assert again.status_code == 200 and again.json() == body
    events = await intake_rows(
        settings, "SELECT envelope FROM outbox WHERE subject = :i AND type = 'staff.deactivated'", i=member["id"]
    )
    assert len(events) == 1
    assert events[0].envelope["data"]["deactivated_by"] == {"id": admin["id"], "name": "管理员乙"}
    assert events[0].envelope["data"]["reason"] == "调岗"
    assert (await intake.post("/v1/staff/stf_unknown/deactivate", json={"reason": "x"}, headers=OP)).status_code == 404


async def test_two_deactivations_at_once_publish_one_event(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    intake = stack["intake"]
    member = await register(intake, "并发", ["reviewer"])
    path = f"/v1/staff/{member['id']}/deactivate"
    answers = await asyncio.gather(*(intake.post(path, json={"reason": f"r{i}"}, headers=OP) for i in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["deactivation"]["by"] == {"id": "operator"}  # a bootstrap identity has no name
    events = await intake_rows(
        settings, "SELECT 1 FROM outbox WHERE subject = :i AND type = 'staff.deactivated'", i=member["id"]
    )
    assert len(events) == 1


async def test_a_deactivated_key_is_refused_by_every_service(stack: dict[str, httpx.AsyncClient]) -> None:
    intake = stack["intake"]
    member = await register(intake, "审计员丙", ["auditor"])
    key = bearer(member["api_key"])
    for name in SERVICES:  # the auditor's role reads dead letters everywhere
        await eventually(
            lambda c=stack[name]: c.get("/v1/dead-letters", headers=key),
            f"{name} accepts the auditor", until=lambda r: r.status_code == 200,
        )
    r = await intake.post(f"/v1/staff/{member['id']}/deactivate", json={"reason": "离职"}, headers=OP)
    assert r.status_code == 200
    # Intake refuses it at once (its own table, and a cache entry lives at most a second); the
    # others once they applied the event.
    await eventually(
        lambda: intake.get("/v1/dead-letters", headers=key), "intake refuses the key",
        until=lambda r: r.status_code == 401, timeout_s=2,
    )
    for name in SERVICES:
        refused = await eventually(
            lambda c=stack[name]: c.get("/v1/dead-letters", headers=key),
            f"{name} refuses the deactivated key", until=lambda r: r.status_code == 401, timeout_s=15,
        )
        assert refused.headers["www-authenticate"] == "Bearer"


async def test_a_staff_members_name_is_recorded_with_what_they_do(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    admin = await register(stack["intake"], "政策管理员", ["admin"])
    key = bearer(admin["api_key"])
    partner = await stack["intake"].post(
        "/v1/partners", json={"name": "由管理员登记", "callback_url": "https://93.184.216.34/hook"}, headers=key
    )
    assert partner.status_code == 201, partner.text
    (registered,) = await intake_rows(
        settings, "SELECT envelope FROM outbox WHERE subject = :i AND type = 'partner.registered'",
        i=partner.json()["id"],
    )
    assert registered.envelope["data"]["registered_by"] == {"id": admin["id"], "name": "政策管理员"}
    eligibility = stack["eligibility"]
    await known_everywhere(stack, admin["api_key"])
    program, year = next(t for t in sample_terms() if t[0] != "GT-EQUITY")  # GT-EQUITY's is the revocation test's
    opened = await eligibility.post("/v1/calls", json=call_body(program, year), headers=key)
    assert opened.status_code == 201, opened.text
    assert opened.json()["opened_by"] == {"id": admin["id"], "name": "政策管理员"}
    closed = await eligibility.post(f"/v1/calls/{opened.json()['id']}/close", json={"reason": "测试"}, headers=key)
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed_by"] == {"id": admin["id"], "name": "政策管理员"}


async def test_a_redrive_by_a_staff_member_shows_the_name(
    stack: dict[str, httpx.AsyncClient], settings: Settings
) -> None:
    operator = await register(stack["intake"], "运维", ["operator"])
    key = bearer(operator["api_key"])
    await known_everywhere(stack, operator["api_key"])
    token = "stf_poison_" + uuid.uuid4().hex[:8]
    bad = new_event("staff.registered", source="test", subject=token, data={"staff_id": token})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await publish(producer, settings, PARTNERS, bad, token)
    finally:
        await producer.stop()
    eligibility = stack["eligibility"]

    async def parked() -> Any:
        items = (await eligibility.get("/v1/dead-letters", headers=key, params={"limit": 200})).json()["items"]
        return next((d for d in items if d["original_event_id"] == str(bad.id)), None)

    item = await eventually(parked, "the malformed staff event parked")
    r = await eligibility.post(f"/v1/dead-letters/{item['id']}/redrive", json={"reason": "测试"}, headers=key)
    assert r.status_code == 202, r.text
    assert r.json()["redrive"]["by"] == operator["id"] and r.json()["redrive"]["by_name"] == "运维"


async def test_a_revocation_by_a_staff_member_shows_the_name(stack: dict[str, httpx.AsyncClient]) -> None:
    intake, ledger = stack["intake"], stack["ledger"]
    call = await open_call(stack["eligibility"], "GT-EQUITY", 2024)
    await wait_for_calls(intake, {call["id"]})
    operator = await register(intake, "撤销员", ["operator"])
    key = bearer(operator["api_key"])
    await known_everywhere(stack, operator["api_key"])
    partner = await new_partner(intake, "Revoked partner", "https://93.184.216.34/hook")
    body = make_body("GT-EQUITY", subject="ROUND-STAFF-" + uuid.uuid4().hex[:6])
    r = await intake.post("/v1/applications", json=body, headers=partner_headers(partner, str(uuid.uuid4())))
    assert r.status_code == 202, r.text
    app_id = r.json()["id"]

    async def award() -> Any:
        items = (await ledger.get("/v1/awards", headers=key, params={"limit": 200})).json()["items"]
        return next((a for a in items if a["application_id"] == app_id), None)

    await eventually(award, "the award decided")
    revoked = await ledger.post(f"/v1/awards/{app_id}/revoke", json={"reason": "资料不实"}, headers=key)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_by"] == operator["id"]  # award.revoked's data: the id, as before
    listed = await award()
    assert listed["revocation"]["revoked_by"] == operator["id"]
    assert listed["revocation"]["revoked_by_name"] == "撤销员"


# -- the replica -----------------------------------------------------------------------------------


def _registered(staff_id: str, key_hash: str) -> Event:
    return new_typed_event(
        StaffRegistered(staff_id=staff_id, name="晚到", roles=["reviewer"], api_key_hash=key_hash,
                        registered_by=Actor(id="operator"), registered_at="2026-01-05T09:00:00+08:00"),
        source="test", subject=staff_id,
    )


def _deactivated(staff_id: str, at: str) -> Event:
    return new_typed_event(
        StaffDeactivated(staff_id=staff_id, deactivated_by=Actor(id="operator"), reason="test", deactivated_at=at),
        source="test", subject=staff_id,
    )


async def test_the_replica_is_idempotent_and_a_late_registration_never_reactivates(
    settings: Settings, stack: dict[str, httpx.AsyncClient]
) -> None:
    engine = make_engine(settings.database_url, "ledger")
    maker = make_sessionmaker(engine)
    try:
        early, late = "stf_" + uuid.uuid4().hex[:20], "stf_" + uuid.uuid4().hex[:20]
        early_hash, late_hash = (hashlib.sha256(s.encode()).hexdigest() for s in (early, late))
        # In order, each event twice.
        async with maker() as session, session.begin():
            for event in (_registered(early, early_hash),) * 2:
                await apply_directory_event(session, event)
            assert (await find_credential(session, early_hash)) is not None
            for event in (_deactivated(early, "2026-01-06T09:00:00+08:00"), _deactivated(early, "2026-01-07T09:00:00+08:00")):
                await apply_directory_event(session, event)
            assert await find_credential(session, early_hash) is None
            first_at = await session.scalar(text("SELECT deactivated_at FROM staff WHERE id = :i"), {"i": early})
            assert first_at.isoformat().startswith("2026-01-06")
            # Out of order: the deactivation first, then the registration it raced.
            await apply_directory_event(session, _deactivated(late, "2026-01-06T09:00:00+08:00"))
            await apply_directory_event(session, _registered(late, late_hash))
            await apply_directory_event(session, _registered(late, late_hash))
            row = (await session.execute(text("SELECT * FROM staff WHERE id = :i"), {"i": late})).one()
            assert row.active is False and row.name == "晚到" and row.api_key_hash == late_hash
            assert await find_credential(session, late_hash) is None
    finally:
        await engine.dispose()
