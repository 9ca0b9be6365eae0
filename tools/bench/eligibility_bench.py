"""Eligibility: CPU seconds to assess() 10,000 applications in one process (every program, valid
inputs validated beforehand, outside the clock)."""

from __future__ import annotations

import time
from typing import Any

from services.eligibility.domain import assess
from shared.policy.catalog import load_catalog
from shared.policy.validation import ApplicationInput, validate_application
from tools.bench.common import bench_subject, env_int


def _inputs(n: int) -> list[ApplicationInput]:
    from tools.samples import BASE, make_body

    catalog = load_catalog()
    programs = sorted(BASE)
    out = []
    for i in range(n):
        body = make_body(programs[i % len(programs)])
        body["subject"] = bench_subject(programs[i % len(programs)], i)
        app, errors = validate_application(body, catalog)
        if app is None or errors:
            raise AssertionError(f"bench body for {programs[i % len(programs)]} is invalid: {errors}")
        out.append(app)
    return out


def run_eligibility_bench() -> dict[str, Any]:
    n = env_int("GRANTLINE_BENCH_ELIGIBILITY_N", 10_000)
    catalog = load_catalog()
    apps = _inputs(n)
    assess(apps[0], catalog)  # warm caches
    cpu0, wall0 = time.process_time(), time.perf_counter()
    eligible = sum(1 for app in apps if assess(app, catalog).eligible)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    cpu0 = time.process_time()
    for app in apps:
        assess(app, catalog).to_receipt()
    receipt_cpu = time.process_time() - cpu0
    return {
        "eligibility_assessments_per_s": round(n / wall, 1),
        "eligibility_cpu_s_per_10k": round(cpu * 10_000 / n, 3),
        "eligibility_with_receipt_cpu_s_per_10k": round(receipt_cpu * 10_000 / n, 3),
        "eligibility_n": n,
        "eligibility_eligible": eligible,
    }
