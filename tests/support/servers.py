"""Real PostgreSQL and Kafka-protocol servers for the test suite, started on demand, no Docker.

``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``, when set, point the suite at existing servers instead.
Embedded servers get free ports and a temp dir, and are torn down at the end of the session; a small
watchdog process also tears them down if the pytest process dies without doing so (SIGKILL, OOM).

Testcontainers (in the dev deps) is deliberately not used here: these machines have a ``docker`` CLI but no
engine that can run containers. If a machine with a working engine should use it, add a branch in
``PostgresServer.start`` / ``KafkaServer.start`` guarded by ``docker info`` succeeding.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from shared.db.engine import dsn_for, dsn_with_database
from tools.stack import embedded

T = TypeVar("T")


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop already runs in this thread."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(_await(factory)))
        except BaseException as exc:
            error.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


# ------------------------------------------------------------------------------------------- databases


async def acreate_database(admin_dsn: str, name: str | None = None) -> str:
    import asyncpg

    name = name or f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(dsn_for(admin_dsn, ""))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn_with_database(admin_dsn, name)


async def adrop_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn_for(admin_dsn, ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(admin_dsn: str, name: str | None = None) -> str:
    """Create a fresh database (random name unless given) on the server of ``admin_dsn``; return its DSN."""
    return run_sync(lambda: acreate_database(admin_dsn, name))


def drop_database(admin_dsn: str, name_or_dsn: str) -> None:
    name = urlsplit(name_or_dsn).path.lstrip("/") if "://" in name_or_dsn else name_or_dsn
    run_sync(lambda: adrop_database(admin_dsn, name))


def new_namespace(prefix: str = "t") -> str:
    """A unique topic/consumer-group prefix, so test modules can share one broker."""
    return f"{prefix}{uuid.uuid4().hex[:10]}."


# --------------------------------------------------------------------------------------------- servers


@dataclass
class PostgresServer:
    dsn: str = ""
    datadir: Path | None = None
    workdir: Path | None = None
    external: bool = False
    startup_seconds: float = 0.0

    @classmethod
    def start(cls) -> PostgresServer:
        url = os.environ.get("DATABASE_URL")
        if url:
            return cls(dsn=url, external=True)
        work = Path(tempfile.mkdtemp(prefix="grantline-pg-"))
        t = time.monotonic()
        datadir = work / "data"
        dsn = embedded.start_postgres(datadir, embedded.free_port(), fast=True, logfile=work / "postgres.log")
        embedded.wait_for_postgres(dsn, timeout=30)
        server = cls(dsn=dsn, datadir=datadir, workdir=work, startup_seconds=time.monotonic() - t)
        _start_watchdog(["--pg", str(datadir), "--rm", str(work)])
        return server

    def stop(self) -> None:
        if self.external or self.datadir is None:
            return
        with contextlib.suppress(Exception):
            embedded.stop_postgres(self.datadir, mode="immediate", timeout=30)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class KafkaServer:
    bootstrap: str = ""
    pidfile: Path | None = None
    workdir: Path | None = None
    external: bool = False
    startup_seconds: float = 0.0
    log: Path | None = field(default=None)

    @classmethod
    def start(cls) -> KafkaServer:
        servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if servers:
            return cls(bootstrap=servers, external=True)
        work = Path(tempfile.mkdtemp(prefix="grantline-kafka-"))
        pidfile, log = work / "tansu.pid", work / "tansu.log"
        t = time.monotonic()
        bootstrap = embedded.start_tansu(embedded.free_port(), log, pidfile=pidfile)
        _start_watchdog(["--pidfile", str(pidfile), "--rm", str(work)])
        return cls(
            bootstrap=bootstrap,
            pidfile=pidfile,
            workdir=work,
            log=log,
            startup_seconds=time.monotonic() - t,
        )

    def stop(self) -> None:
        if self.external or self.pidfile is None:
            return
        with contextlib.suppress(Exception):
            embedded.stop_tansu(self.pidfile, timeout=5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -------------------------------------------------------------------------------------------- watchdog


def _start_watchdog(args: list[str]) -> None:
    """Detached helper that stops the given servers once this (pytest) process is gone."""
    subprocess.Popen(
        [sys.executable, "-m", "tests.support.servers", "--watch", str(os.getpid()), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=str(Path(__file__).resolve().parents[2]),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def _watchdog(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--watch", type=int, required=True)
    p.add_argument("--pg")
    p.add_argument("--pidfile")
    p.add_argument("--rm")
    a = p.parse_args(argv)
    while embedded.pid_alive(a.watch):
        time.sleep(1.0)
    if a.pg and Path(a.pg).exists():
        with contextlib.suppress(Exception):
            embedded.stop_postgres(Path(a.pg), mode="immediate", timeout=30)
    if a.pidfile and Path(a.pidfile).exists():
        with contextlib.suppress(Exception):
            embedded.stop_tansu(Path(a.pidfile), timeout=5)
    if a.rm:
        shutil.rmtree(a.rm, ignore_errors=True)


if __name__ == "__main__":
    _watchdog(sys.argv[1:])
