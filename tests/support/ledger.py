"""Feeding the ledger: receipts as eligibility writes them, assessment envelopes, driving the
real consumer loop, reading the ledger's outbox, publishing the history and running
`grantline-replay` over it."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import decide_subscription, objections_subscription
from shared.config.settings import Settings
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import (
    ANY_BENEFICIARY,
    Actor,
    PartnerRegistered,
    StaffDeactivated,
    StaffRegistered,
    new_typed_event,
)
from shared.contracts.topics import ASSESSMENTS
from shared.kernel.money import format_fen
from shared.kernel.subjects import subject_key
from shared.messaging.consumer import ConsumerLoop
from shared.messaging.directory import apply_directory_event
from shared.messaging.outbox import add_events
from shared.policy.catalog import load_catalog
from shared.web.auth import hash_secret, new_api_key, new_staff_key
from tests.support.records import FakeRecord

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
_MILESTONE = {"GT-EQUITY": "financing", "GT-CLIN": "completion", "GT-PRODUCT": "marketing_authorization",
              "CT-PRODUCT": "marketing_authorization"}


def new_applicant() -> str:
    return "9131" + secrets.token_hex(7).upper()[:14]


def receipt(
    program: str,
    applicant: str,
    subject: str,
    entitlement: str,
    *,
    year: int = 2024,
    eligible: bool = True,
    application_id: str | None = None,
    pools: list[dict[str, Any]] | None = None,
    call: tuple[str, str] | None = None,
    review: str | None = None,
    requested: str | None = None,
) -> dict[str, Any]:
    """A receipt shaped like the engine's (services.eligibility.domain.assess): subjects in pool
    claims and in the overlap as keys (subject_key), the display subject as typed; `call` = (call
    id, budget) adds the call's budget pool and call_id. `review` ("required" or "auto"; None: a
    receipt from before review modes) adds the program's review mode, its rules with their
    citations and the inputs with the `requested` amount, as the engine writes them now."""
    catalog = load_catalog()
    key = subject_key(subject)
    if pools is None:
        pools = [
            {"pool": p.name, "scope": p.scope,
             "beneficiary": ANY_BENEFICIARY if p.scope == "project" else applicant,
             "year": year if p.scope == "beneficiary_year" else None,
             "subject": None if p.scope == "beneficiary_year" else key,
             "cap": format_fen(p.cap_fen), "citation": p.citation}
            for p in catalog.programs[program].pools
        ]
    if call is not None:
        pools = [*pools, {"pool": "call-budget", "scope": "call", "beneficiary": ANY_BENEFICIARY, "year": year,
                          "subject": call[0], "cap": call[1], "citation": f"call {call[0]}"}]
    extra: dict[str, Any] = {} if call is None else {"call_id": call[0]}
    rules: list[dict[str, Any]] = []
    if review is not None:
        rules = [{"rule": rule, "passed": True, "detail": f"{rule}: met", "citation": citation}
                 for rule, citation in _RULES]
        extra |= {"engine_version": "1", "inputs": {"requested_amount": requested, "facts": {}}, "review": review}
    return {
        "application_id": application_id or f"app_{secrets.token_hex(8)}",
        "partner_id": "ptn_test",
        "program": program,
        "year": year,
        "applicant": {"id": applicant, "name": "上海某某生物科技有限公司", "kind": "enterprise",
                      "registered_in_shanghai": True},
        "subject": subject,
        "eligible": eligible,
        "entitlement": entitlement if eligible else "0.00",
        "reasons": [] if eligible else [{"code": "RULE_FAILED", "message": "x: failed", "citation": "000 §五"}],
        "rules": rules,
        "pools": pools,
        "overlap": {"applicant": applicant, "subject": key, "milestone": _MILESTONE.get(program, "m")},
        "catalog_version": catalog.version,
        **extra,
        "received_at": T0.isoformat(),
    }


_RULES = (("registered_in_shanghai", "002 §一(三)"), ("window.event_date", "000 §六"))

_clock = [0]


def assessed(data: dict[str, Any]) -> Event:
    _clock[0] += 1
    return new_event("application.assessed", source="grantline.eligibility", subject=str(data["application_id"]),
                     data=data, time=T0 + timedelta(seconds=_clock[0]))


def again(event: Event) -> Event:
    """The same assessment under a new event id (a re-driven copy)."""
    return new_event(event.type, source=event.source, subject=event.subject, data=event.data, time=event.time)


def ledger_loop(maker: async_sessionmaker[AsyncSession], settings: Settings) -> ConsumerLoop:
    return ConsumerLoop(service="ledger", subscription=decide_subscription(), maker=maker,
                        bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace)


def objections_loop(maker: async_sessionmaker[AsyncSession], settings: Settings) -> ConsumerLoop:
    """The ledger's consumer of objection.resolved (on grantline.announcements)."""
    return ConsumerLoop(service="ledger", subscription=objections_subscription(settings.consumer_attempts_max),
                        maker=maker, bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace)


async def process(loop: ConsumerLoop, events: Sequence[Event | bytes], topic: str = ASSESSMENTS) -> None:
    records = [FakeRecord(e if isinstance(e, bytes) else e.to_bytes(), i, topic=topic)
               for i, e in enumerate(events)]
    await loop.process(records)  # type: ignore[arg-type]


async def decided(maker: async_sessionmaker[AsyncSession], application_ids: Sequence[str]) -> list[dict[str, Any]]:
    """award.decided data in the outbox for these applications, in outbox order."""
    async with maker() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox WHERE type = 'award.decided' AND subject = ANY(:ids) ORDER BY seq"),
            {"ids": list(application_ids)},
        )
        by_app: dict[str, list[dict[str, Any]]] = {}
        for (env,) in rows:
            by_app.setdefault(env["subject"], []).append(env["data"])
    return [d for app in application_ids for d in by_app.get(app, [])]


@dataclass(frozen=True)
class Staff:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_staff(maker: async_sessionmaker[AsyncSession], name: str, *roles: str) -> Staff:
    """A staff member in this service's directory replica, as staff.registered puts one there."""
    staff = Staff(f"stf_{secrets.token_hex(8)}", new_staff_key())
    event = new_typed_event(StaffRegistered(staff_id=staff.id, name=name, roles=list(roles),
                                            api_key_hash=hash_secret(staff.key), registered_by=Actor(id="operator"),
                                            registered_at=T0.isoformat()), source="test", subject=staff.id)
    async with maker() as session, session.begin():
        await apply_directory_event(session, event)
    return staff


async def known_staff(maker: async_sessionmaker[AsyncSession], name: str, *roles: str) -> dict[str, str]:
    """A staff member in this service's directory replica: the bearer header of its key."""
    return (await new_staff(maker, name, *roles)).headers


async def deactivate_staff(maker: async_sessionmaker[AsyncSession], staff_id: str) -> None:
    """As staff.deactivated does in this service's directory replica."""
    event = new_typed_event(StaffDeactivated(staff_id=staff_id, deactivated_by=Actor(id="operator"), reason="left",
                                             deactivated_at=T0.isoformat()), source="test", subject=staff_id)
    async with maker() as session, session.begin():
        await apply_directory_event(session, event)


async def new_partner_key(maker: async_sessionmaker[AsyncSession]) -> str:
    """A partner in this service's directory replica, as partner.registered puts one there: its key."""
    key, partner_id = new_api_key(), f"ptn_{secrets.token_hex(8)}"
    event = new_typed_event(PartnerRegistered(partner_id=partner_id, name="p", callback_url="https://p.example/h",
                                              api_key_hash=hash_secret(key)), source="test", subject=partner_id)
    async with maker() as session, session.begin():
        await apply_directory_event(session, event)
    return key


async def known_partner(maker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """A partner in this service's directory replica: the bearer header of its key."""
    return {"Authorization": f"Bearer {await new_partner_key(maker)}"}


async def scalar(maker: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    async with maker() as session:
        return await session.scalar(text(sql), params)


ROOT = Path(__file__).resolve().parents[2]


async def publish_assessments(settings: Settings, eligibility: async_sessionmaker[AsyncSession],
                              events: Sequence[Event], *, broker: bool = True) -> None:
    """As eligibility would: into its outbox (its event history) and, unless told not to, onto the broker."""
    async with eligibility() as session, session.begin():
        await add_events(session, [(e, e.data["applicant"]["id"]) for e in events])
    if not broker:
        return
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for e in events:
            await producer.send(settings.topic_namespace + ASSESSMENTS, e.to_bytes(),
                                key=e.data["applicant"]["id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def run_replay(settings: Settings, *args: str) -> tuple[int, str, str]:
    """`grantline-replay` as a real subprocess (the console script) on the settings' database and
    broker: its exit code, stdout and stderr."""
    script = Path(sys.executable).parent / "grantline-replay"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "services.ledger.replay.api"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    env.update({"DATABASE_URL": settings.database_url, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "GRANTLINE_TOPIC_NAMESPACE": settings.topic_namespace, "PYTHONPATH": str(ROOT)})
    proc = await asyncio.create_subprocess_exec(*cmd, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
