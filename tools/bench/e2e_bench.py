"""End to end: the four services as processes; applications/s from POST to `award.decided`, and the
latency of each (its award.decided read from `<ns>grantline.awards` minus its POST send time).

Everything on the bench side shares one event loop: the poster (``RawHttp``, closed loop at a steady
concurrency), the awards reader (all partitions assigned, from the beginning) and a webhook sink that
answers notify's deliveries with 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts.topics import AWARDS
from shared.db.migrate import upgrade_all
from shared.messaging.topics import ensure_topics
from tools.bench.common import (
    Tokens,
    app_for,
    application_bodies,
    cpu_seconds,
    create_partner,
    env_int,
    new_namespace,
    open_calls,
    scaled,
    service_env,
    wait_calls_listed,
)
from tools.bench.loadgen import RawHttp, new_event_loop, render_post
from tools.bench.profiling import Profiles
from tools.bench.report import percentile
from tools.bench.stack import Infra, Proc, _log
from tools.stack import embedded

SERVICES = ("intake", "eligibility", "ledger", "notify")
PARTITIONS = 6


@dataclass
class E2EStack:
    database_url: str
    namespace: str
    tokens: Tokens
    procs: dict[str, Proc] = field(default_factory=dict)


@dataclass
class Tracker:
    sent: dict[str, float] = field(default_factory=dict)  # application id -> POST send time
    answered: dict[str, float] = field(default_factory=dict)  # application id -> 202 received
    arrived: dict[str, float] = field(default_factory=dict)  # application id -> award.decided read
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    webhooks: int = 0

    def done(self, ids: list[str]) -> int:
        return sum(1 for i in ids if i in self.arrived)


# ------------------------------------------------------------------------------------------ pieces


async def _webhook_sink(tracker: Tracker) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                at = lower.find(b"\r\ncontent-length:")
                if at >= 0:
                    end = lower.index(b"\r\n", at + 2)
                    await reader.readexactly(int(lower[at + 17 : end].strip()))
                tracker.webhooks += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _read_awards(bootstrap: str, topic: str, tracker: Tracker, stop: asyncio.Event,
                       ready: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50, max_poll_records=2000)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ready.set()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    try:
                        event = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        continue
                    if event.get("type") == "award.decided":
                        tracker.arrived.setdefault(str(event.get("subject")), now)
    finally:
        await consumer.stop()


async def _post_all(port: int, api_key: str, bodies: list[bytes], concurrency: int, tracker: Tracker) -> list[str]:
    templates = [render_post("127.0.0.1", port, "/v1/applications", {"Authorization": f"Bearer {api_key}"}, b)
                 for b in bodies]
    ids: list[str] = []
    next_index = 0
    run = uuid.uuid4().hex[:12].encode()

    async def worker() -> None:
        nonlocal next_index
        conn = RawHttp("127.0.0.1", port)
        try:
            while next_index < len(templates):
                i = next_index
                next_index += 1
                head, tail = templates[i]
                raw = head + b"Idempotency-Key: bench-" + run + b"-" + str(i).encode() + tail
                for _attempt in range(3):
                    t = time.perf_counter()
                    try:
                        status, body = await conn.request(raw)
                    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                        tracker.failures.append(f"POST: {exc!r}")
                        continue
                    tracker.statuses[str(status)] = tracker.statuses.get(str(status), 0) + 1
                    if status == 202:
                        app_id = str(orjson.loads(body)["id"])
                        tracker.sent.setdefault(app_id, t)
                        tracker.answered[app_id] = time.perf_counter()
                        ids.append(app_id)
                    elif len(tracker.failures) < 20:
                        tracker.failures.append(f"POST {status}: {body[:200]!r}")
                    break
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


async def _wait_arrived(tracker: Tracker, ids: list[str], stall_timeout: float) -> None:
    last, last_change = -1, time.monotonic()
    while True:
        count = tracker.done(ids)
        if count >= len(ids):
            return
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > stall_timeout:
            return
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------------------ the run


async def _drive(infra: Infra, stack: E2EStack, n: int, concurrency: int, tracker: Tracker,
                 sink: asyncio.Server) -> dict[str, Any]:
    topic = stack.namespace + AWARDS
    stop, ready = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(_read_awards(infra.bootstrap, topic, tracker, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        port = stack.procs["intake"].port
        assert port is not None
        sink_port = sink.sockets[0].getsockname()[1]
        api_key = await asyncio.to_thread(create_partner, stack.procs["intake"].url, stack.tokens.operator,
                                          f"http://127.0.0.1:{sink_port}/hooks")
        encode = lambda bodies: [orjson.dumps(b) for b in bodies]  # noqa: E731

        # Warm-up: every consumer group joined, every code path loaded, before the clock starts.
        warm = await _post_all(port, api_key, encode(application_bodies(40, 40, seed=1)), 8, tracker)
        await _wait_arrived(tracker, warm, stall_timeout=60)
        if tracker.done(warm) < len(warm):
            raise RuntimeError(f"warm-up: only {tracker.done(warm)} of {len(warm)} award.decided arrived")

        bodies = encode(application_bodies(n, max(1, n // 10), seed=2))
        pids = {name: p.pid for name, p in stack.procs.items()}
        if infra.tansu_pidfile is not None and (tpid := embedded.read_pidfile(infra.tansu_pidfile)):
            pids["tansu"] = tpid
        pids["bench"] = os.getpid()  # the poster, the awards reader and the webhook sink
        cpu_before = cpu_seconds(pids, infra.pg_datadir)
        profiles = Profiles("e2e")
        profiles.start(*stack.procs.values())
        try:
            started = time.perf_counter()
            ids = await _post_all(port, api_key, bodies, concurrency, tracker)
            posted = time.perf_counter()
            await _wait_arrived(tracker, ids, stall_timeout=30)
            finished = time.perf_counter()
        finally:
            await asyncio.to_thread(profiles.stop)
        cpu_after = cpu_seconds(pids, infra.pg_datadir)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 10)

    arrived = [i for i in ids if i in tracker.arrived]
    latencies = sorted(tracker.arrived[i] - tracker.sent[i] for i in arrived)
    last = max((tracker.arrived[i] for i in arrived), default=finished)
    window = last - started
    cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after}
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return {
        "e2e_rps": round(len(arrived) / window, 1) if arrived and window > 0 else None,
        "e2e_p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "e2e_p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
        "e2e_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "e2e_n": n,
        "e2e_decided": len(arrived),
        "e2e_concurrency": concurrency,
        "e2e_post_rps": round(len(ids) / (posted - started), 1) if posted > started else None,
        "e2e_seconds": round(window, 2),
        "e2e_cpu_s": cpu,
        "e2e_webhooks_received": tracker.webhooks,
    }


def start_services(infra: Infra, stack: E2EStack) -> None:
    for name in SERVICES:
        env = service_env(stack.database_url, infra.bootstrap, stack.namespace, stack.tokens,
                          GRANTLINE_SERVICE_NAME=name)
        stack.procs[name] = infra.uvicorn(name, app_for(name), env)
    for proc in stack.procs.values():
        infra.wait_http_ok(proc)
    calls = open_calls(stack.procs["eligibility"].url, stack.tokens.operator, ("GT-EQUITY",))
    wait_calls_listed(stack.procs["intake"].url, calls)


def run_e2e_bench(infra: Infra) -> tuple[dict[str, Any], E2EStack]:
    """Returns the figures and the stack (services stopped; database and topics kept for replay)."""
    n = env_int("GRANTLINE_BENCH_E2E_N", scaled(2000, minimum=100))
    concurrency = env_int("GRANTLINE_BENCH_E2E_CONCURRENCY", 32)
    db = infra.create_database("bench_e2e")
    upgrade_all(db)
    stack = E2EStack(db, new_namespace("benche2e"), Tokens.generate())
    asyncio.run(ensure_topics(infra.bootstrap, partitions=PARTITIONS, namespace=stack.namespace))
    start_services(infra, stack)
    tracker = Tracker()
    try:
        async def main() -> dict[str, Any]:
            sink = await _webhook_sink(tracker)
            try:
                return await _drive(infra, stack, n, concurrency, tracker, sink)
            finally:
                sink.close()

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(main())
    finally:
        infra.stop(*stack.procs.values())
    notes = []
    if result["e2e_decided"] < n:
        notes.append(f"e2e: only {result['e2e_decided']} of {n} award.decided arrived "
                     f"(POST statuses {tracker.statuses}, failures {tracker.failures[:3]})")
    result["notes"] = notes
    _log(f"e2e: {result['e2e_rps']} apps/s, p50 {result['e2e_p50_ms']} ms, p99 {result['e2e_p99_ms']} ms; "
         f"cpu s {result['e2e_cpu_s']}")
    return result, stack
