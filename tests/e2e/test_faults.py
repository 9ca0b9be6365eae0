"""Proof under fire: 240 applications over 20 enterprises while a service is SIGKILLed, the
in-memory broker restarts, or PostgreSQL restarts. Afterwards every application is final,
every enterprise's 1000万 pool is exactly full, nothing is awarded twice, the journal
verifies, and the partner received every decision (deduplicated by event id). And reviews in
flight (issue 13): holds placed, the ledger SIGKILLed while reviewers settle them; afterwards
each hold is reviewed exactly once, pools, holds and journal are exact, verify is ok and
grantline-replay rebuilds the same ledger."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.messaging.topics import ensure_topics
from tests.support.client import random_uscc
from tests.support.ledger import run_replay
from tests.support.scenarios import (
    Scenario,
    check_outcome,
    check_reviews,
    open_scenario,
    place_holds,
    review_with_fault,
    run_with_fault,
)
from tools.stack.embedded import free_port, start_postgres, start_tansu, stop_postgres, stop_tansu

pytestmark = pytest.mark.e2e


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
        time.sleep(1)  # by design: the database stays down a moment, as in a real restart
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


@pytest.fixture
def scenario(servers: Servers) -> Iterator[Scenario]:
    with open_scenario(servers.pg_dsn, servers.bootstrap) as opened:
        yield opened


def kill_and_restart(scenario: Scenario, *names: str) -> Callable[[], None]:
    def fault() -> None:
        for name in names:
            scenario.stack.kill(name, signal.SIGKILL)
        time.sleep(1.0)  # by design: the services stay down while the load goes on
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


def test_sigkill_ledger_mid_review_batch(scenario: Scenario) -> None:
    enterprises = [random_uscc() for _ in range(5)]
    held = place_holds(scenario, enterprises)
    ledger = scenario.stack.services["ledger"].url
    answered, before_fault = asyncio.run(review_with_fault(ledger, sorted(held), kill_and_restart(scenario, "ledger")))
    assert before_fault < len(held), "the ledger was killed with reviews still to come"
    check_reviews(scenario, enterprises, held, answered)
    settings = SimpleNamespace(database_url=scenario.db, kafka_bootstrap_servers=scenario.stack.env[
        "KAFKA_BOOTSTRAP_SERVERS"], topic_namespace=scenario.namespace)
    code, out, err = asyncio.run(run_replay(settings, "--source", "outbox"))  # type: ignore[arg-type]
    assert code == 0, out + err
    assert f"{len(held)} reviews" in out
