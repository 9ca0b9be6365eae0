"""The four services as real processes (uvicorn), for end-to-end and fault tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from shared.db.engine import dsn_for
from shared.db.migrate import upgrade_all
from shared.db.roles import OWNER, provision_local
from shared.messaging.topics import ensure_topics
from tests.support.auth import AUDITOR_TOKEN, OPERATOR_TOKEN
from tests.support.policy import open_sample_calls_sync
from tests.support.servers import create_database, new_namespace
from tests.support.waiting import eventually_sync
from tools.stack.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # logs and screenshots a failed run leaves to look at
SERVICES = ("intake", "eligibility", "ledger", "notify")


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        """Whether /healthz answers 200; a process that has exited is an error, not a wait."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.tail()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout_s: float = 60) -> None:
        try:
            eventually_sync(self.healthy, f"{self.name} healthy", timeout_s=timeout_s, every_s=0.1)
        except AssertionError:
            raise TimeoutError(f"{self.name} not healthy: {self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        path = self.log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class Stack:
    """`env["DATABASE_URL"]` is the administrator's DSN (what tests read and tamper with, and what
    grantline-replay runs with); each service process connects as its own role (`role_dsns`)."""

    env: dict[str, str]
    log_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    extras: list[ServiceProcess] = field(default_factory=list)
    role_dsns: dict[str, str] = field(default_factory=dict)

    def start(self, name: str) -> None:
        self._spawn(self.services[name])

    def start_extra(self, name: str) -> ServiceProcess:
        """A second instance of a service: same settings, same consumer groups, another port."""
        svc = ServiceProcess(name, free_port(), self.log_dir / f"{name}-{len(self.extras) + 2}.log")
        self.extras.append(svc)
        self._spawn(svc)
        return svc

    def _spawn(self, svc: ServiceProcess) -> None:
        name = svc.name
        env = dict(self.env)
        if name in self.role_dsns:
            env["DATABASE_URL"] = self.role_dsns[name]
        log = svc.log_path.open("ab")
        svc.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"services.{name}.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(svc.port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_extra_healthy(self, name: str, timeout_s: float = 30) -> ServiceProcess:
        svc = self.start_extra(name)
        svc.wait_healthy(timeout_s)
        return svc

    def wait_healthy(self, names: tuple[str, ...] = SERVICES, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s  # one deadline for them all
        for name in names:
            self.services[name].wait_healthy(max(0.0, deadline - time.monotonic()))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.services[name].proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(timeout=20)

    def stop_all(self) -> None:
        everything = [*self.services.values(), *self.extras]
        for svc in everything:
            proc = svc.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for svc in everything:
            proc = svc.proc
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def tail(self, name: str, lines: int = 30) -> str:
        return self.services[name].tail(lines)


@contextmanager
def service_process(name: str, db: str, bootstrap: str, namespace: str, overrides: dict[str, str],
                    log_name: str, timeout_s: float = 30) -> Iterator[str]:
    """`name` alone as a uvicorn process on `db` and `namespace` (migrated and created here), with
    the stack's settings and `overrides`; yields its base URL once /healthz is 200."""
    role_dsns = _prepare(db, bootstrap, namespace, partitions=3)
    stack = make_stack(stack_settings(db, bootstrap, namespace, overrides), ARTIFACTS, role_dsns)
    svc = stack.services[name]
    svc.log_path = ARTIFACTS / log_name
    try:
        stack.start(name)
        svc.wait_healthy(timeout_s)
        yield svc.url
    finally:
        stack.stop_all()


def make_stack(env_overrides: dict[str, str], log_dir: Path, role_dsns: dict[str, str] | None = None) -> Stack:
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(ROOT)
    stack = Stack(env=env, log_dir=log_dir, role_dsns=dict(role_dsns or {}))
    for name in SERVICES:
        port = free_port()
        stack.services[name] = ServiceProcess(name, port, log_dir / f"{name}.log")
    for name in ("ledger", "notify"):  # their staff pages link to each other, as `make up` sets them
        env.setdefault(f"GRANTLINE_{name.upper()}_PUBLIC_URL", stack.services[name].url)
    return stack


def stack_settings(db: str, bootstrap: str, namespace: str, overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a test stack: its database and topic namespace, the tests' tokens,
    private callbacks allowed (receivers run on loopback), short polls; `overrides` add or replace."""
    return {
        "DATABASE_URL": db,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GRANTLINE_ENV": "test",
        "GRANTLINE_TOPIC_NAMESPACE": namespace,
        "GRANTLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "GRANTLINE_AUDITOR_TOKEN": AUDITOR_TOKEN,
        "GRANTLINE_WEBHOOK_SIGNING_KEY": "stack-signing-key-for-tests-0123456789",
        "GRANTLINE_ALLOW_PRIVATE_CALLBACKS": "1",
        "GRANTLINE_RELAY_POLL_SECONDS": "0.1",
        "GRANTLINE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        **overrides,
    }


@contextmanager
def four_services(pg_dsn: str, bootstrap: str, prefix: str, overrides: dict[str, str],
                  partitions: int = 3) -> Iterator[Stack]:
    """The four services as processes on a database and a topic namespace of their own, healthy,
    with a call open for every sample program and year (tests/support/policy.py); stopped on the way
    out. `overrides`: settings beyond `stack_settings`."""
    db, namespace = create_database(pg_dsn), new_namespace(prefix)
    role_dsns = _prepare(db, bootstrap, namespace, partitions)
    stack = make_stack(stack_settings(db, bootstrap, namespace, overrides),
                       ARTIFACTS / f"{prefix}-logs-{namespace.rstrip('.')}", role_dsns)
    try:
        for name in stack.services:
            stack.start(name)
        stack.wait_healthy()
        assert_services_on_their_roles(db, stack)
        open_sample_calls_sync(stack.services["eligibility"].url, stack.services["intake"].url)
        yield stack
    finally:
        stack.stop_all()


def assert_services_on_their_roles(admin_db: str, stack: Stack) -> None:
    """Each service's connections (application_name grantline-<service>) log in as its role, not as
    the administrator: the stack proves the grants suffice."""
    async def sessions() -> set[tuple[str, str]]:
        conn = await asyncpg.connect(dsn_for(admin_db, driver=""))
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT application_name, usename FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'grantline-%'"
            )
        finally:
            await conn.close()
        return {(r["application_name"], r["usename"]) for r in rows}

    seen = asyncio.run(sessions())
    expected = {(f"grantline-{name}", user) for name, dsn in stack.role_dsns.items()
                if name in stack.services and (user := urlsplit(dsn).username)}
    assert expected and seen == expected, f"services' database sessions {sorted(seen)}, expected {sorted(expected)}"


def _prepare(db: str, bootstrap: str, namespace: str, partitions: int) -> dict[str, str]:
    """As `make up` does: the roles provisioned (shared.db.roles), the database migrated to head
    by the owner role, the namespace's topics created. Each role's DSN, by "owner" or service."""
    role_dsns = provision_local(db)
    upgrade_all(role_dsns[OWNER])
    asyncio.run(ensure_topics(bootstrap, partitions=partitions, namespace=namespace))
    return role_dsns
