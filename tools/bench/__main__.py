"""`make bench`: every figure of ARCHITECTURE.md "Performance", each next to its baseline, in one run.

Starts its own PostgreSQL (fast mode) and Tansu broker on free ports in a temp dir, unless
DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set, and measures:

1. intake: accepted applications/s (one uvicorn worker) vs a FastAPI hello-world POST, same load;
2. end to end: applications/s from POST to `award.decided`, p50/p99 latency, vs raw broker msgs/s;
3. ledger, one hot beneficiary: batched awards/s vs one transaction per award (tools/bench/ledger_bench.py);
4. replay: events/s and equal to live (tools/tools/bench/replay_bench.py, when it exists);
5. eligibility: CPU seconds to assess 10,000 applications;
6. verify: the ledger's journal verified in full and from a checkpoint at 10^6 entries, vs hashing
   the same bytes alone (tools/bench/verify_bench.py);
7. transparency: the 公示 log's appends and proofs at 10^6 leaves, vs hashing the same bytes alone
   (tools/bench/transparency_bench.py);
8. payments: 20,000 orders batched and exported as pain.001 vs serialising the same XML alone, and a
   20,000-entry camt.054 matched vs parsing it alone (tools/bench/payments_bench.py);
9. exports: 100,000 award rows written as XLSX (constant memory) vs the same rows as CSV, and the
   XLSX writer's memory growth (tools/bench/exports_bench.py).

Prints a table, then exactly one JSON line (the last line). Progress goes to stderr.

Environment knobs: GRANTLINE_BENCH_SCALE (default 1: sizes and durations), GRANTLINE_BENCH_ONLY
(comma list of intake,e2e,broker,ledger,replay,eligibility,verify,transparency,payments,exports), GRANTLINE_BENCH_CONCURRENCY (intake,
32), GRANTLINE_BENCH_INTAKE_SECONDS, GRANTLINE_BENCH_E2E_N, GRANTLINE_BENCH_E2E_CONCURRENCY (32),
GRANTLINE_BENCH_BROKER_N, GRANTLINE_BENCH_LEDGER_N, GRANTLINE_BENCH_VERIFY_N, GRANTLINE_BENCH_TLOG_N, GRANTLINE_BENCH_PAYMENTS_N, GRANTLINE_BENCH_LOADGEN (auto|wrk|python),
GRANTLINE_BENCH_PROFILE=DIR (py-spy profiles of the services, see bench/profiling.py),
GRANTLINE_BENCH_KEEP_LOGS=DIR (copy the service logs there), GRANTLINE_BENCH_APP_TEMPLATE (what-if
runs: the ASGI app per service, default services.{name}.app:app).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.bench.report import Row, render_table
from tools.bench.stack import Infra, _log

SECTIONS = ("eligibility", "broker", "intake", "e2e", "replay", "ledger", "verify", "transparency", "payments", "exports")

REQUIRED_KEYS = (
    "intake_rps",
    "intake_baseline_rps",
    "e2e_rps",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "ledger_hot_awards_per_s",
    "ledger_naive_awards_per_s",
    "replay_events_per_s",
    "replay_equal",
    "broker_baseline_msgs_per_s",
    "eligibility_assessments_per_s",
    "eligibility_cpu_s_per_10k",
)


def _selected() -> set[str]:
    raw = os.environ.get("GRANTLINE_BENCH_ONLY", "")
    chosen = {s.strip() for s in raw.split(",") if s.strip()} or set(SECTIONS)
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise SystemExit(f"GRANTLINE_BENCH_ONLY: unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    return chosen


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _ge(a: Any, goal: float) -> bool | None:
    return None if not isinstance(a, int | float) else float(a) >= goal


def rows(f: dict[str, Any]) -> list[Row]:
    intake_ratio = _ratio(f.get("intake_rps"), f.get("intake_baseline_rps"))
    ledger_ratio = _ratio(f.get("ledger_hot_awards_per_s"), f.get("ledger_naive_awards_per_s"))
    p99 = f.get("e2e_p99_ms")
    cpu = f.get("eligibility_cpu_s_per_10k")
    equal = f.get("replay_equal")
    return [
        Row("intake: accepted applications/s", f.get("intake_rps"), "/s", f.get("intake_baseline_rps"),
            "hello-world POST/s", intake_ratio, ">= 0.5x baseline", _ge(intake_ratio, 0.5)),
        Row("intake: p99 latency at 32 in flight", f.get("intake_p99_ms"), "ms", f.get("intake_baseline_p99_ms"),
            "ms hello-world"),
        Row("e2e: applications/s POST -> award.decided", f.get("e2e_rps"), "/s",
            f.get("broker_baseline_msgs_per_s"), "raw broker msgs/s",
            _ratio(f.get("e2e_rps"), f.get("broker_baseline_msgs_per_s")), ">= 1,000/s", _ge(f.get("e2e_rps"), 1000)),
        Row("e2e: p50 latency", f.get("e2e_p50_ms"), "ms"),
        Row("e2e: p99 latency", p99, "ms", goal="<= 1,000 ms",
            met=None if not isinstance(p99, int | float) else p99 <= 1000),
        Row("ledger, hot beneficiary: awards/s", f.get("ledger_hot_awards_per_s"), "/s",
            f.get("ledger_naive_awards_per_s"), "naive awards/s (1 tx each)", ledger_ratio, ">= 5x naive",
            _ge(ledger_ratio, 5)),
        Row("replay: events/s", f.get("replay_events_per_s"), "/s", f.get("replay_baseline_events_per_s"),
            "consumed+discarded/s", _ratio(f.get("replay_events_per_s"), f.get("replay_baseline_events_per_s")),
            ">= 20,000/s", _ge(f.get("replay_events_per_s"), 20_000)),
        Row("replay: equal to live", equal, goal="equal", met=equal if isinstance(equal, bool) else None),
        Row("eligibility: CPU s per 10,000 assess()", cpu, "s", goal="< 1 s",
            met=None if not isinstance(cpu, int | float) else cpu < 1),
        Row("eligibility: assessments/s", f.get("eligibility_assessments_per_s"), "/s"),
        Row(f"verify: journal entries/s, full run of {f.get('verify_n') or '?'}", f.get("verify_full_entries_per_s"),
            "/s", f.get("verify_hash_only_entries_per_s"), "hashing alone entries/s",
            _ratio(f.get("verify_full_entries_per_s"), f.get("verify_hash_only_entries_per_s"))),
        Row("verify: full run", f.get("verify_full_s"), "s"),
        Row(f"verify: from a checkpoint, {f.get('verify_incremental_new') or '?'} new entries",
            f.get("verify_incremental_s"), "s", f.get("verify_incremental_hash_only_s"), "s hashing them alone"),
        Row(f"transparency: appends/s at {f.get('tlog_leaves') or '?'} leaves (100 a tx)",
            f.get("tlog_append_batched_per_s"), "/s", f.get("tlog_hash_baseline_per_s"), "SHA-256 of the same bytes/s",
            _ratio(f.get("tlog_append_batched_per_s"), f.get("tlog_hash_baseline_per_s"))),
        Row("transparency: appends/s, one a transaction", f.get("tlog_append_per_s"), "/s"),
        Row("transparency: inclusion proofs/s (from stored subtrees)", f.get("tlog_inclusion_proofs_per_s"), "/s",
            f.get("tlog_proof_verify_per_s"), "proofs verified by a client/s"),
        Row("transparency: consistency proofs/s", f.get("tlog_consistency_proofs_per_s"), "/s"),
        Row("transparency: inclusion proof size", f.get("tlog_inclusion_proof_bytes"), "bytes"),
        Row(f"payments: orders batched + exported as pain.001/s ({f.get('payments_n') or '?'})",
            f.get("payments_orders_exported_per_s"), "/s", f.get("payments_serialise_alone_orders_per_s"),
            "serialising the XML alone/s",
            _ratio(f.get("payments_orders_exported_per_s"), f.get("payments_serialise_alone_orders_per_s"))),
        Row("payments: camt.054 entries matched/s", f.get("payments_entries_matched_per_s"), "/s",
            f.get("payments_parse_alone_entries_per_s"), "parsing the XML alone/s",
            _ratio(f.get("payments_entries_matched_per_s"), f.get("payments_parse_alone_entries_per_s"))),
        Row(f"exports: XLSX rows/s ({f.get('exports_rows') or '?'} awards)", f.get("exports_xlsx_rows_per_s"), "/s",
            f.get("exports_csv_rows_per_s"), "the same rows as CSV/s",
            _ratio(f.get("exports_xlsx_rows_per_s"), f.get("exports_csv_rows_per_s"))),
        Row("exports: RSS growth while writing the XLSX", f.get("exports_xlsx_rss_growth_mb"), "MB"),
    ]


def main() -> int:
    # services' modules configure logging at import (in-process: ledger and replay benches)
    os.environ.setdefault("GRANTLINE_LOG_LEVEL", "WARNING")
    signal.signal(signal.SIGTERM, _on_sigterm)
    chosen = _selected()
    started = time.monotonic()
    figures: dict[str, Any] = {k: None for k in REQUIRED_KEYS}
    notes: list[str] = []
    failed: list[str] = []
    keep = os.environ.get("GRANTLINE_BENCH_KEEP_LOGS")
    infra = Infra(keep_logs=Path(keep).resolve() if keep else None)

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        if name not in chosen:
            return
        _log(f"--- {name}")
        t = time.monotonic()
        try:
            result = fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            failed.append(name)
            notes.append(f"{name} failed: {type(exc).__name__}: {str(exc)[:500]}")
            traceback.print_exc(file=sys.stderr)
            return
        notes.extend(result.pop("notes", []))
        figures.update(result)
        _log(f"{name} done in {time.monotonic() - t:.1f}s")

    interrupted = False
    try:
        from tools.bench.eligibility_bench import run_eligibility_bench

        section("eligibility", run_eligibility_bench)  # pure CPU: before any server runs
        from tools.bench.exports_bench import run_exports_bench

        section("exports", run_exports_bench)  # pure CPU too
        if chosen - {"eligibility"}:
            infra.start()
            figures["broker"] = "embedded tansu" if infra.tansu_pidfile else "external"
            figures["database"] = "embedded postgres (fast)" if infra.pg_datadir else "external"
        from tools.bench.broker_bench import run_broker_bench

        section("broker", lambda: run_broker_bench(infra.bootstrap))
        from tools.bench.intake_bench import run_intake_bench

        section("intake", lambda: run_intake_bench(infra))

        def e2e() -> dict[str, Any]:
            from tools.bench.e2e_bench import run_e2e_bench

            return run_e2e_bench(infra)[0]

        section("e2e", e2e)

        def replay() -> dict[str, Any]:
            from tools.bench.common import new_namespace
            from tools.bench.replay_hook import run_replay

            # tools/bench/replay_bench.py builds its own live ledger in scratch schemas: a fresh database
            return run_replay(infra.create_database("bench_replay"), infra.bootstrap, new_namespace("benchrp"))

        section("replay", replay)

        def ledger() -> dict[str, Any]:
            from tools.bench.common import env_int, scaled
            from tools.bench.ledger_bench import run_ledger_bench

            n = env_int("GRANTLINE_BENCH_LEDGER_N", scaled(2000, minimum=100))
            out = asyncio.run(run_ledger_bench(infra.create_database("bench_ledger"), n))
            return {"ledger_hot_awards_per_s": out["batched_awards_per_s"],
                    "ledger_naive_awards_per_s": out["naive_awards_per_s"],
                    "ledger_ratio": out["ratio"], "ledger_n": n}

        section("ledger", ledger)

        def verify() -> dict[str, Any]:
            from tools.bench.common import env_int, scaled
            from tools.bench.verify_bench import run_verify_bench

            n = env_int("GRANTLINE_BENCH_VERIFY_N", scaled(1_000_000, minimum=10_000))
            return asyncio.run(run_verify_bench(infra.create_database("bench_verify"), n))

        section("verify", verify)

        def transparency() -> dict[str, Any]:
            from tools.bench.common import env_int, scaled
            from tools.bench.transparency_bench import run_transparency_bench

            n = env_int("GRANTLINE_BENCH_TLOG_N", scaled(1_000_000, minimum=10_000))
            return asyncio.run(run_transparency_bench(infra.create_database("bench_tlog"), n))

        section("transparency", transparency)

        def payments() -> dict[str, Any]:
            from tools.bench.common import env_int, scaled
            from tools.bench.payments_bench import run_payments_bench

            n = env_int("GRANTLINE_BENCH_PAYMENTS_N", scaled(20_000, minimum=500))
            return asyncio.run(run_payments_bench(infra.create_database("bench_payments"), n))

        section("payments", payments)
        if "replay" in chosen and figures.get("replay_events_per_s") is None and not any(
            n.startswith("replay") for n in notes
        ):
            notes.append("replay: no figures returned")
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted")
        _log("interrupted: cleaning up")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        infra.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    figures["run_seconds"] = round(time.monotonic() - started, 1)
    figures["scale"] = float(os.environ.get("GRANTLINE_BENCH_SCALE", "1") or 1)
    figures["notes"] = notes
    print()
    print(render_table(rows(figures)))
    for note in notes:
        print(f"note: {note}")
    print(f"run time: {figures['run_seconds']}s")
    print(json.dumps(figures, default=str), flush=True)
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
