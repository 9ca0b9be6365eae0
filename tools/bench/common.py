"""Shared by the bench sections: service environments, partners, application bodies, the scale."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.events import Actor, CallOpened, CatalogPublished, EventWindow, new_typed_event
from shared.contracts.topics import POLICY
from shared.db.migrate import upgrade
from shared.db.roles import OWNER, SERVICES, provision_local
from shared.kernel.uscc import ALPHABET, with_check_character
from shared.policy.catalog import CATALOG_PATH, catalog_version_of, load_catalog

# Enterprise programs whose base case (tests/unit/test_engine.py BASE) is eligible.
ENTERPRISE_PROGRAMS = ("GT-EQUITY", "GT-INSURANCE", "BIO-DIGITAL", "BIO-CDMO", "BIO-CHAIN", "CT-INSURANCE")


def scale() -> float:
    return float(os.environ.get("GRANTLINE_BENCH_SCALE", "1") or 1)


def scaled(n: float, minimum: int = 1) -> int:
    return max(minimum, int(n * scale()))


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def app_for(name: str) -> str:
    """The ASGI app a service runs: GRANTLINE_BENCH_APP_TEMPLATE (default ``services.{name}.app:app``)
    lets a what-if run wrap the real app (e.g. to try a setting) without touching the services."""
    return os.environ.get("GRANTLINE_BENCH_APP_TEMPLATE", "services.{name}.app:app").format(name=name)


def new_namespace(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}."


@dataclass(frozen=True)
class Tokens:
    operator: str
    auditor: str
    signing_key: str

    @classmethod
    def generate(cls) -> Tokens:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(32))


def service_env(database_url: str, bootstrap: str, namespace: str, tokens: Tokens, **extra: str) -> dict[str, str]:
    """The environment of a service process (as tests/support/processes.py gives it). A Grantline
    service (GRANTLINE_SERVICE_NAME in `extra`) connects as its own role, as under `make up`, so the
    figures are those of the privileges production runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    service = extra.get("GRANTLINE_SERVICE_NAME", "")
    env.update(
        {
            "DATABASE_URL": service_database_url(database_url, service) if service in SERVICES else database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "GRANTLINE_TOPIC_NAMESPACE": namespace,
            "GRANTLINE_OPERATOR_TOKEN": tokens.operator,
            "GRANTLINE_AUDITOR_TOKEN": tokens.auditor,
            "GRANTLINE_WEBHOOK_SIGNING_KEY": tokens.signing_key,
            "GRANTLINE_ALLOW_PRIVATE_CALLBACKS": "1",
            "GRANTLINE_LOG_LEVEL": "WARNING",
            "GRANTLINE_ENV": "test",
            # the bench measures capacity, not the per-partner limiter (200/s per key by default)
            "GRANTLINE_PARTNER_RATE_PER_SECOND": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, (str(_root()), os.environ.get("PYTHONPATH")))),
            **extra,
        }
    )
    return env


@functools.cache
def service_database_url(admin_url: str, service: str) -> str:
    """`service`'s role's DSN on `admin_url`'s database: the roles provisioned (shared.db.roles),
    and `service`'s migrations run again by the owner, which at head only grants the role its
    privileges (the bench migrates before the roles may exist)."""
    dsns = provision_local(admin_url)
    upgrade(dsns[OWNER], service)
    return dsns[service]


def _root() -> str:
    from tools.bench.stack import ROOT

    return str(ROOT)


def create_partner(intake_url: str, operator_token: str, callback_url: str) -> str:
    """Registers a partner; returns its API key."""
    r = httpx.post(
        f"{intake_url}/v1/partners",
        json={"name": "bench partner", "callback_url": callback_url},
        headers={"Authorization": f"Bearer {operator_token}"},
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["api_key"])


# ------------------------------------------------------------------------------------------- calls
# Intake admits an application only while a call for its program and year is open: the bench opens
# one per program it posts (in its sample year), open for the run, before the clock starts.


def call_body(program: str) -> dict[str, Any]:
    """POST /v1/calls's body: `program`'s sample year, its whole event window, open a day from now."""
    from tools.samples import make_body

    window = load_catalog().programs[program].window
    now = datetime.now(UTC)
    return {
        "program": program, "year": make_body(program)["year"], "title": f"bench {program}",
        "opens_at": (now - timedelta(hours=1)).isoformat(), "closes_at": (now + timedelta(days=1)).isoformat(),
        "event_window": {"from": window.start.isoformat(), "to": window.end.isoformat()},
    }


def open_calls(eligibility_url: str, operator_token: str, programs: tuple[str, ...]) -> list[str]:
    """Calls opened as an admin does (eligibility's POST /v1/calls); their ids."""
    ids = []
    for program in programs:
        r = httpx.post(f"{eligibility_url}/v1/calls", json=call_body(program),
                       headers={"Authorization": f"Bearer {operator_token}"}, timeout=30)
        r.raise_for_status()
        ids.append(str(r.json()["id"]))
    return ids


async def publish_calls(bootstrap: str, namespace: str, programs: tuple[str, ...]) -> list[str]:
    """For intake alone: the shipped catalog and a call per program on `namespace`'s grantline.policy,
    as eligibility would publish them; the calls' ids."""
    document = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    version, now, operator = catalog_version_of(document), datetime.now(UTC).isoformat(), Actor(id="operator")
    events = [(new_typed_event(CatalogPublished(version=version, published_at=now, published_by=operator,
                                                document=document), source="grantline.eligibility", subject=version),
               version)]
    for program in programs:
        body = call_body(program)
        data = CallOpened(id="call_" + uuid.uuid4().hex[:20], **{k: body[k] for k in ("program", "year", "title")},
                          opens_at=body["opens_at"], closes_at=body["closes_at"],
                          event_window=EventWindow.model_validate(body["event_window"]), catalog_version=version,
                          opened_by=operator, opened_at=now)
        events.append((new_typed_event(data, source="grantline.eligibility", subject=data.id), program))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event, key in events:
            await producer.send_and_wait(namespace + POLICY, event.to_bytes(), key=key.encode())
    finally:
        await producer.stop()
    return [event.subject for event, _ in events[1:]]


def wait_calls_listed(intake_url: str, call_ids: list[str], timeout_s: float = 60) -> None:
    """Until intake lists every call open (GET /v1/programs): from then on it admits under them."""
    deadline = time.monotonic() + timeout_s
    listed: set[str] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            items = httpx.get(f"{intake_url}/v1/programs", timeout=10).json()["items"]
            listed = {call["id"] for item in items for call in item["calls"]}
            if set(call_ids) <= listed:
                return
        time.sleep(0.1)
    raise RuntimeError(f"intake did not list calls {sorted(set(call_ids) - listed)} within {timeout_s:.0f}s")


def random_uscc(rng: random.Random) -> str:
    body = "".join(rng.choice(ALPHABET) for _ in range(9))
    return with_check_character(f"91310115{body}")


def application_bodies(n: int, enterprises: int, seed: int = 7, programs: tuple[str, ...] = ("GT-EQUITY",)) -> list[dict[str, Any]]:
    """``n`` valid, eligible application bodies spread over ``enterprises`` applicants, unique subjects."""
    from tools.samples import make_body

    rng = random.Random(seed)
    applicants = [random_uscc(rng) for _ in range(enterprises)]
    run = uuid.uuid4().hex[:6]
    bodies = []
    for i in range(n):
        program = programs[i % len(programs)]
        body = make_body(program, applicant={"id": applicants[i % enterprises]})
        body["subject"] = bench_subject(program, i, run)
        bodies.append(body)
    return bodies


def bench_subject(program: str, i: int, run: str = "") -> str:
    """A subject of its own for the i-th body that `program` accepts: the sample's registry-number
    form where the program requires one (GT-PCT, GT-CLIN) with `i` as its serial, else BENCH-<run>-<i>."""
    from tools.samples import make_body

    sample = str(make_body(program)["subject"])
    serial = re.search(r"\d{6,}$", sample)
    if serial is None:
        return f"BENCH-{run}-{i}" if run else f"BENCH-{i}"
    width = len(serial.group())
    return sample[: serial.start()] + f"{i % 10**width:0{width}d}"


def cpu_seconds(pids: dict[str, int], pg_datadir: Path | None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process, and by PostgreSQL's whole
    process tree when its data directory is given."""
    import psutil

    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
    if pg_datadir is not None:
        try:
            master = psutil.Process(int((pg_datadir / "postmaster.pid").read_text().split()[0]))
            total = 0.0
            for p in [master, *master.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out["postgres"] = total
        except (OSError, ValueError, psutil.Error):
            pass
    return out
