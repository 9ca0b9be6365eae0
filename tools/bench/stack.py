"""What the benchmarks run on: PostgreSQL and the Tansu broker (embedded, or DATABASE_URL /
KAFKA_BOOTSTRAP_SERVERS when set), scratch databases, and uvicorn processes.

Everything started here is registered with one ``Infra`` and stopped by ``Infra.close()``, which
the bench calls in ``finally`` (Ctrl-C and SIGTERM included). A detached watchdog process also
stops the children and removes the temp dir if the bench process dies without doing so (SIGKILL).

    python -m tools.bench.stack --watch PID --dir WORKDIR     # the watchdog (started by Infra itself)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared.db.engine import dsn_for, dsn_with_database
from tools.stack import embedded

ROOT = Path(__file__).resolve().parents[2]


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        return embedded.tail(self.log, lines)


@dataclass
class Infra:
    """PostgreSQL + broker for one bench run, and everything else it starts."""

    admin_dsn: str = ""
    bootstrap: str = ""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="grantline-bench-")))
    pg_datadir: Path | None = None
    tansu_pidfile: Path | None = None
    databases: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keep_logs: Path | None = None

    # ------------------------------------------------------------------------------------ servers

    def start(self) -> None:
        self._start_watchdog()
        url = os.environ.get("DATABASE_URL")
        if url:
            self.admin_dsn = url
            _log("DATABASE_URL is set: using that PostgreSQL")
        else:
            t = time.monotonic()
            self.pg_datadir = self.workdir / "pg"
            self.admin_dsn = embedded.start_postgres(
                self.pg_datadir, embedded.free_port(), fast=True, logfile=self.workdir / "postgres.log"
            )
            embedded.wait_for_postgres(self.admin_dsn, timeout=30)
            _log(f"postgres (fast mode) up in {time.monotonic() - t:.1f}s")
        servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if servers:
            self.bootstrap = servers
            _log("KAFKA_BOOTSTRAP_SERVERS is set: using that broker")
        else:
            t = time.monotonic()
            self.tansu_pidfile = self.workdir / "tansu.pid"
            self.bootstrap = embedded.start_tansu(
                embedded.free_port(), self.workdir / "tansu.log", pidfile=self.tansu_pidfile
            )
            _log(f"tansu up in {time.monotonic() - t:.1f}s")

    def create_database(self, prefix: str) -> str:
        """A new database on the server (dropped by ``close``); returns its DSN."""
        import asyncpg

        name = f"{prefix}_{secrets.token_hex(4)}"

        async def go() -> None:
            conn = await asyncpg.connect(dsn_for(self.admin_dsn, ""))
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(go())
        self.databases.append(name)
        self._write_state()
        return dsn_with_database(self.admin_dsn, name)

    def _drop_databases(self) -> None:
        if not self.databases:
            return
        import asyncpg

        async def go() -> None:
            conn = await asyncpg.connect(dsn_for(self.admin_dsn, ""), timeout=10)
            try:
                for name in self.databases:
                    with contextlib.suppress(Exception):
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        with contextlib.suppress(Exception):
            asyncio.run(go())
        self.databases.clear()

    # ---------------------------------------------------------------------------------- processes

    def spawn(self, name: str, argv: list[str], env: dict[str, str], port: int | None = None) -> Proc:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the bench only; it stops the children in order
            )
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        self._write_state()
        return proc

    def uvicorn(self, name: str, app: str, env: dict[str, str]) -> Proc:
        """One uvicorn worker process: ``--no-access-log --log-level warning`` (the same for every app)."""
        port = embedded.free_port()
        argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log", "--log-level", "warning"]
        return self.spawn(name, argv, env, port)

    def wait_http_ok(self, proc: Proc, path: str = "/healthz", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited ({proc.proc.returncode}):\n{proc.tail()}")
            try:
                with urllib.request.urlopen(proc.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} not healthy after {timeout:.0f}s:\n{proc.tail()}")
            time.sleep(0.2)

    def stop(self, *procs: Proc, timeout: float = 15.0) -> None:
        """SIGTERM all at once (uvicorn drains), then wait; SIGKILL what outlives ``timeout``."""
        for p in procs:
            if p.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.proc.wait(timeout=5)
            if self.keep_logs is not None:
                with contextlib.suppress(OSError):
                    self.keep_logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(p.log, self.keep_logs / p.log.name)
            if p in self.procs:
                self.procs.remove(p)
        self._write_state()

    # -------------------------------------------------------------------------------------- close

    def close(self) -> None:
        """Stop everything this run started and remove the temp dir. Safe to call twice."""
        with contextlib.suppress(Exception):
            self.stop(*list(self.procs), timeout=10)
        self._drop_databases()
        if self.tansu_pidfile is not None:
            with contextlib.suppress(Exception):
                embedded.stop_tansu(self.tansu_pidfile, timeout=5)
            self.tansu_pidfile = None
        if self.pg_datadir is not None:
            with contextlib.suppress(Exception):
                embedded.stop_postgres(self.pg_datadir, mode="immediate", timeout=30)
            self.pg_datadir = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ----------------------------------------------------------------------------------- watchdog

    def _write_state(self) -> None:
        """What the watchdog must clean up, should this process die first."""
        lines = [f"pid {p.pid}" for p in self.procs]
        with contextlib.suppress(OSError):
            (self.workdir / "children").write_text("\n".join(lines) + "\n")

    def _start_watchdog(self) -> None:
        subprocess.Popen(
            [sys.executable, "-m", "tools.bench.stack", "--watch", str(os.getpid()), "--dir", str(self.workdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def _watchdog(parent: int, workdir: Path) -> None:
    while embedded.pid_alive(parent):
        if not workdir.exists():
            return  # the bench cleaned up itself
        time.sleep(1.0)
    if not workdir.exists():
        return
    with contextlib.suppress(OSError):
        for line in (workdir / "children").read_text().splitlines():
            if line.startswith("pid "):
                with contextlib.suppress(Exception):
                    embedded.terminate_pid(int(line.split()[1]), timeout=10)
    if (workdir / "tansu.pid").exists():
        with contextlib.suppress(Exception):
            embedded.stop_tansu(workdir / "tansu.pid", timeout=5)
    if (workdir / "pg").exists():
        with contextlib.suppress(Exception):
            embedded.stop_postgres(workdir / "pg", mode="immediate", timeout=30)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--watch", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    _watchdog(args.watch, Path(args.dir))
