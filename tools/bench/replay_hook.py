"""Calls bench/replay_bench.py's ``run_replay_bench`` when that module exists (another engineer's),
passing what its signature asks for by name; otherwise the replay figures are null with a note."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
from typing import Any

from tools.bench.common import scaled


def _pick(result: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in result:
            return result[name]
    return None


def run_replay(database_url: str, bootstrap: str, namespace: str) -> dict[str, Any]:
    empty: dict[str, Any] = {"replay_events_per_s": None, "replay_equal": None, "replay_baseline_events_per_s": None}
    if importlib.util.find_spec("tools.bench.replay_bench") is None:
        return {**empty, "notes": ["replay: bench/replay_bench.py does not exist yet; figures are null"]}
    module = importlib.import_module("tools.bench.replay_bench")
    fn = getattr(module, "run_replay_bench", None)
    if fn is None:
        return {**empty, "notes": ["replay: bench/replay_bench.py has no run_replay_bench; figures are null"]}
    known = {
        "database_url": database_url, "db_url": database_url, "dsn": database_url, "url": database_url,
        "bootstrap": bootstrap, "bootstrap_servers": bootstrap, "kafka_bootstrap": bootstrap,
        "kafka_bootstrap_servers": bootstrap, "namespace": namespace, "topic_namespace": namespace,
    }
    kwargs: dict[str, Any] = {}
    missing = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in known:
            kwargs[name] = known[name]
        elif name in ("n", "events", "count", "n_events") and isinstance(param.default, int):
            kwargs[name] = scaled(param.default, minimum=100)
        elif param.default is inspect.Parameter.empty:
            missing.append(name)
    if missing:
        return {**empty, "notes": [f"replay: run_replay_bench needs {missing}, which the bench cannot supply"]}
    out = fn(**kwargs)
    if inspect.isawaitable(out):
        async def wait() -> Any:
            return await out

        out = asyncio.run(wait())
    result = dict(out or {})
    figures = {
        "replay_events_per_s": _pick(result, "replay_events_per_s", "events_per_s"),
        "replay_equal": _pick(result, "replay_equal", "equal"),
        "replay_baseline_events_per_s": _pick(
            result, "replay_baseline_events_per_s", "baseline_events_per_s", "baseline", "discard_events_per_s"
        ),
    }
    return {**figures, "replay_detail": result, "notes": []}
