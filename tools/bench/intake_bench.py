"""Intake: accepted applications/s (POST /v1/applications, unique Idempotency-Keys, DB + outbox),
one uvicorn worker, against a FastAPI hello-world POST served the same way and loaded the same way."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import text

from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from shared.messaging.topics import ensure_topics
from tools.bench.common import (
    Tokens,
    app_for,
    application_bodies,
    cpu_seconds,
    create_partner,
    env_int,
    new_namespace,
    publish_calls,
    scale,
    service_env,
    wait_calls_listed,
)
from tools.bench.loadgen import LoadResult, LoadSpec, generate, generator_name
from tools.bench.profiling import Profiles
from tools.bench.stack import Infra, Proc, _log
from tools.stack import embedded


def _load(proc: Proc, infra: Infra, bodies: list[str], headers: dict[str, str], duration: float,
          concurrency: int) -> LoadResult:
    assert proc.port is not None
    spec = LoadSpec(host="127.0.0.1", port=proc.port, path="/v1/applications", bodies=bodies,
                    headers=headers, concurrency=concurrency, duration=duration)
    return generate(spec, infra.workdir)


def _measure(proc: Proc, infra: Infra, bodies: list[str], headers: dict[str, str], profile: bool = False
             ) -> tuple[LoadResult, dict[str, float]]:
    """The load result, and the CPU seconds each process used during the measured window."""
    duration = float(env_int("GRANTLINE_BENCH_INTAKE_SECONDS", max(3, round(10 * scale()))))
    warmup = float(env_int("GRANTLINE_BENCH_WARMUP_SECONDS", 2))
    concurrency = env_int("GRANTLINE_BENCH_CONCURRENCY", 32)
    _load(proc, infra, bodies, headers, warmup, concurrency)
    profiles = Profiles("intake")
    if profile:
        profiles.start(proc)
    pids = {"server": proc.pid}
    if infra.tansu_pidfile is not None and (tansu := embedded.read_pidfile(infra.tansu_pidfile)):
        pids["tansu"] = tansu
    before = cpu_seconds(pids, infra.pg_datadir)
    try:
        result = _load(proc, infra, bodies, headers, duration, concurrency)
    finally:
        profiles.stop()
    after = cpu_seconds(pids, infra.pg_datadir)
    return result, {k: round(after[k] - before.get(k, 0.0), 2) for k in after}


async def _stored(database_url: str) -> int:
    engine = make_engine(database_url, "intake", pool_size=1)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM applications"))).scalar_one())
    finally:
        await engine.dispose()


def run_intake_bench(infra: Infra) -> dict[str, Any]:
    db = infra.create_database("bench_intake")
    upgrade(db, "intake")
    namespace = new_namespace("benchin")
    asyncio.run(ensure_topics(infra.bootstrap, partitions=6, namespace=namespace))
    tokens = Tokens.generate()
    bodies = [json.dumps(b, ensure_ascii=False) for b in application_bodies(256, 200)]
    _log(f"intake: load generator {generator_name()}")

    intake = infra.uvicorn("intake", app_for("intake"),
                           service_env(db, infra.bootstrap, namespace, tokens, GRANTLINE_SERVICE_NAME="intake"))
    try:
        infra.wait_http_ok(intake)
        wait_calls_listed(intake.url, asyncio.run(publish_calls(infra.bootstrap, namespace, ("GT-EQUITY",))))
        api_key = create_partner(intake.url, tokens.operator, "http://127.0.0.1:9/hooks")
        result, cpu = _measure(intake, infra, bodies, {"Authorization": f"Bearer {api_key}"}, profile=True)
    finally:
        infra.stop(intake)
    stored = asyncio.run(_stored(db))
    _log(f"intake: {result.ok_per_s:,.0f} accepted/s ({result.ok} in {result.duration_s:.1f}s, {stored} stored)")

    hello = infra.uvicorn("hello", "tools.bench.hello_app:app", service_env(db, infra.bootstrap, namespace, tokens))
    try:
        infra.wait_http_ok(hello)
        baseline, baseline_cpu = _measure(hello, infra, bodies, {"Authorization": "Bearer hello"})
    finally:
        infra.stop(hello)
    _log(f"intake baseline (hello world): {baseline.ok_per_s:,.0f} POST/s")

    notes = []
    if result.requests != result.ok or result.errors:
        notes.append(f"intake: {result.requests - result.ok} non-2xx answers {result.statuses}, "
                     f"{result.errors} socket errors")
    if stored < result.ok:
        notes.append(f"intake: {result.ok} accepted but only {stored} stored")
    return {
        "intake_rps": round(result.ok_per_s, 1),
        "intake_baseline_rps": round(baseline.ok_per_s, 1),
        "intake_ratio": round(result.ok_per_s / baseline.ok_per_s, 3) if baseline.ok_per_s else None,
        "intake_p50_ms": result.p50_ms,
        "intake_p99_ms": result.p99_ms,
        "intake_baseline_p50_ms": baseline.p50_ms,
        "intake_baseline_p99_ms": baseline.p99_ms,
        "intake_loadgen": result.generator,
        "intake_concurrency": env_int("GRANTLINE_BENCH_CONCURRENCY", 32),
        "intake_seconds": round(result.duration_s, 1),
        # CPU seconds in the measured window: where a request's cost goes besides the server
        "intake_cpu_s": cpu,
        "intake_baseline_cpu_s": baseline_cpu,
        "notes": notes,
    }
