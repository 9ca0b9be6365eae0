"""Proof under fire: 400 applications over 20 enterprises while a service is SIGKILLed, the
in-memory broker restarts, or PostgreSQL restarts. Afterwards every application is final,
every enterprise's 1000万 pool is exactly full, nothing is awarded twice, the journal
verifies, and the partner received every decision (deduplicated by event id)."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.db.engine import make_engine
from shared.db.migrate import upgrade_all
from shared.kernel.money import format_fen, parse_amount
from shared.messaging.topics import ensure_topics
from tests.e2e.conftest import ARTIFACTS, AUDITOR_TOKEN, OPERATOR_TOKEN
from tests.support.client import FINAL, Partner, create_partner, random_uscc
from tests.support.processes import Stack, make_stack
from tests.support.receiver import Receiver
from tests.support.servers import create_database, new_namespace
from tests.unit.test_engine import make_body
from tools.stack.embedded import free_port, start_postgres, start_tansu, stop_postgres, stop_tansu

pytestmark = pytest.mark.e2e

ENTERPRISES = 20
APPLICATIONS = 400
CAP = "10000000.00"
AUDIT = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}


@dataclass
class Servers:
    pg_dir: Path
    pg_port: int
    pg_dsn: str
    kafka_port: int
    kafka_pidfile: Path
    kafka_log: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def restart_broker(self, namespace: str) -> None:
        stop_tansu(self.kafka_pidfile)
        start_tansu(self.kafka_port, self.kafka_log, pidfile=self.kafka_pidfile)
        asyncio.run(ensure_topics(self.bootstrap, partitions=3, namespace=namespace))

    def restart_postgres(self) -> None:
        stop_postgres(self.pg_dir, mode="immediate")
        time.sleep(1)
        start_postgres(self.pg_dir, self.pg_port, fast=False)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Servers of this module's own: it restarts them, which others must not see."""
    root = tmp_path_factory.mktemp("faults")
    pg_port, kafka_port = free_port(), free_port()
    # Durable settings: a crash test on a server that may drop acknowledged commits proves nothing.
    dsn = start_postgres(root / "pg", pg_port, fast=False)
    pidfile = root / "tansu.pid"
    start_tansu(kafka_port, root / "tansu.log", pidfile=pidfile)
    try:
        yield Servers(root / "pg", pg_port, dsn, kafka_port, pidfile, root / "tansu.log")
    finally:
        stop_tansu(pidfile)
        stop_postgres(root / "pg", mode="immediate")


@dataclass
class Scenario:
    stack: Stack
    db: str
    namespace: str
    partner: Partner
    receiver: Receiver
    accepted: dict[int, str] = field(default_factory=dict)


@contextmanager
def open_scenario(pg_dsn: str, bootstrap: str, *, prefix: str = "fault", partitions: int = 3) -> Iterator[Scenario]:
    """A stack of the four services on its own database and topic namespace, a partner and its receiver."""
    db = create_database(pg_dsn)
    upgrade_all(db)
    namespace = new_namespace(prefix)
    asyncio.run(ensure_topics(bootstrap, partitions=partitions, namespace=namespace))
    stack = make_stack(
        {
            "DATABASE_URL": db,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "GRANTLINE_ENV": "test",
            "GRANTLINE_TOPIC_NAMESPACE": namespace,
            "GRANTLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "GRANTLINE_AUDITOR_TOKEN": AUDITOR_TOKEN,
            "GRANTLINE_WEBHOOK_SIGNING_KEY": "fault-signing-key-0123456789",
            "GRANTLINE_ALLOW_PRIVATE_CALLBACKS": "1",
            "GRANTLINE_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "GRANTLINE_WEBHOOK_ATTEMPTS_MAX": "30",
            "GRANTLINE_RELAY_POLL_SECONDS": "0.1",
            "GRANTLINE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
            "GRANTLINE_AMNESIA_CHECK_SECONDS": "1",
            "GRANTLINE_LOG_LEVEL": "WARNING",
        },
        ARTIFACTS / f"{prefix}-logs-{namespace.rstrip('.')}",
    )
    receiver = Receiver().start()
    for name in stack.services:
        stack.start(name)
    try:
        stack.wait_healthy()
        partner = create_partner(
            stack.services["intake"].url, OPERATOR_TOKEN, f"{receiver.url}/hook/faults", name="faults"
        )
        receiver.secrets["faults"] = partner.webhook_secret
        yield Scenario(stack, db, namespace, partner, receiver)
    finally:
        stack.stop_all()
        receiver.stop()


@pytest.fixture
def scenario(servers: Servers) -> Iterator[Scenario]:
    with open_scenario(servers.pg_dsn, servers.bootstrap) as opened:
        yield opened


def load(enterprises: list[str]) -> list[dict[str, Any]]:
    """20 applications per enterprise of 1,234,567.89 each: more than its 1000万 pool holds."""
    bodies = []
    for ent in enterprises:
        for i in range(APPLICATIONS // ENTERPRISES):
            body = make_body("GT-EQUITY", applicant={"id": ent})
            body["subject"] = f"ROUND-{i:02d}"
            body["facts"]["financing_received"] = "61728394.50"
            bodies.append(body)
    random.Random(7).shuffle(bodies)
    return bodies


async def post_all(
    scenario: Scenario, bodies: list[dict[str, Any]], deadline_s: float = 150, in_applicant_order: bool = False
) -> None:
    """Post like a careful partner: retry with the same Idempotency-Key until answered.
    `in_applicant_order`: one applicant's bodies one after another, in list order (applicants concurrently)."""
    keys = [str(uuid.uuid4()) for _ in bodies]
    gate = asyncio.Semaphore(16)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=scenario.partner.base, headers=scenario.partner.headers, timeout=10
    ) as client:

        async def one(i: int) -> None:
            async with gate:
                while time.monotonic() - started < deadline_s:
                    try:
                        r = await client.post(
                            "/v1/applications", json=bodies[i], headers={"Idempotency-Key": keys[i]}
                        )
                        if r.status_code == 202:
                            scenario.accepted[i] = r.json()["id"]
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)

        if not in_applicant_order:
            await asyncio.gather(*(one(i) for i in range(len(bodies))))
            return
        by_applicant: dict[str, list[int]] = defaultdict(list)
        for i, body in enumerate(bodies):
            by_applicant[body["applicant"]["id"]].append(i)

        async def in_order(indices: list[int]) -> None:
            for i in indices:
                await one(i)

        await asyncio.gather(*(in_order(indices) for indices in by_applicant.values()))


def run_with_fault(
    scenario: Scenario,
    fault: Callable[[], None],
    enterprises: list[str] | None = None,
    in_applicant_order: bool = False,
) -> list[str]:
    enterprises = enterprises or [random_uscc() for _ in range(ENTERPRISES)]
    bodies = load(enterprises)
    poster = threading.Thread(
        target=lambda: asyncio.run(post_all(scenario, bodies, in_applicant_order=in_applicant_order))
    )
    poster.start()
    while len(scenario.accepted) < APPLICATIONS // 4 and poster.is_alive():
        time.sleep(0.05)
    fault()
    poster.join(timeout=200)
    assert len(scenario.accepted) == APPLICATIONS, "every application is eventually accepted"
    return enterprises


def wait_all_final(scenario: Scenario, timeout_s: float = 150) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    pending = set(scenario.accepted.values())
    final: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=scenario.partner.base, headers=scenario.partner.headers, timeout=10) as client:
        while pending and time.monotonic() < deadline:
            for app_id in list(pending):
                try:
                    body = client.get(f"/v1/applications/{app_id}").json()
                except httpx.HTTPError:
                    continue
                if body.get("status") in FINAL:
                    final[app_id] = body
                    pending.discard(app_id)
            if pending:
                time.sleep(0.5)
    if pending:
        with httpx.Client(base_url=scenario.partner.base, headers=scenario.partner.headers) as client:
            stuck = [client.get(f"/v1/applications/{a}").json() for a in sorted(pending)[:5]]
        where = [
            (b.get("id"), b.get("status"), [e["type"] for e in b.get("timeline", [])], b.get("detail"))
            for b in stuck
        ]
        raise AssertionError(f"{len(pending)} applications never reached a final state, e.g. {where}")
    return final


def wait_for_webhooks(scenario: Scenario, app_ids: set[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app_ids <= set(scenario.receiver.decisions()):
            return
        time.sleep(0.25)
    missing = app_ids - set(scenario.receiver.decisions())
    raise AssertionError(f"{len(missing)} decisions never reached the partner")


def check_outcome(scenario: Scenario, enterprises: list[str]) -> dict[str, dict[str, Any]]:
    """Every invariant after a load; returns application id → its final body."""
    final = wait_all_final(scenario)
    by_enterprise: dict[str, int] = {}
    for body in final.values():
        ent = body["applicant"]["id"]
        by_enterprise[ent] = by_enterprise.get(ent, 0) + parse_amount(body["decision"]["awarded"])
    assert {e: format_fen(v) for e, v in by_enterprise.items()} == {e: CAP for e in enterprises}

    ledger = scenario.stack.services["ledger"].url
    for ent in enterprises:
        items = httpx.get(
            f"{ledger}/v1/balances", params={"beneficiary": ent}, headers=AUDIT, timeout=10
        ).json()
        pool = [i for i in items["items"] if i["pool"] == "GT-EQUITY/beneficiary-year"]
        assert [(p["committed"], p["cap"]) for p in pool] == [(CAP, CAP)], ent
    assert httpx.get(f"{ledger}/v1/audit/verify", headers=AUDIT, timeout=30).json()["ok"] is True

    async def twice() -> tuple[int, int]:
        engine = make_engine(scenario.db, "ledger")
        try:
            async with engine.connect() as conn:
                decisions = await conn.scalar(text("SELECT count(*) FROM decisions"))
                doubled = await conn.scalar(
                    text(
                        "SELECT count(*) FROM (SELECT application_id FROM journal_entries "
                        "WHERE kind = 'award' GROUP BY application_id HAVING count(*) > 1) d"
                    )
                )
        finally:
            await engine.dispose()
        return int(decisions or 0), int(doubled or 0)

    decisions, doubled = asyncio.run(twice())
    assert (decisions, doubled) == (APPLICATIONS, 0)
    wait_for_webhooks(scenario, set(final))
    assert scenario.receiver.bad_signatures == 0
    return final


def kill_and_restart(scenario: Scenario, *names: str) -> Callable[[], None]:
    def fault() -> None:
        for name in names:
            scenario.stack.kill(name, signal.SIGKILL)
        time.sleep(1.0)
        for name in names:
            scenario.stack.start(name)
        scenario.stack.wait_healthy(names)

    return fault


def test_sigkill_ledger_and_eligibility_mid_load(scenario: Scenario) -> None:
    enterprises = run_with_fault(scenario, kill_and_restart(scenario, "ledger", "eligibility"))
    check_outcome(scenario, enterprises)


def test_sigkill_notify_and_intake_mid_load(scenario: Scenario) -> None:
    enterprises = run_with_fault(scenario, kill_and_restart(scenario, "notify", "intake"))
    check_outcome(scenario, enterprises)


def test_broker_restart_mid_load_is_redriven_from_the_outboxes(scenario: Scenario, servers: Servers) -> None:
    enterprises = run_with_fault(scenario, lambda: servers.restart_broker(scenario.namespace))
    check_outcome(scenario, enterprises)


def test_postgres_restart_mid_load_services_recover_by_themselves(
    scenario: Scenario, servers: Servers
) -> None:
    enterprises = run_with_fault(scenario, servers.restart_postgres)
    check_outcome(scenario, enterprises)
