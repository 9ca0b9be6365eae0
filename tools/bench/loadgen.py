"""HTTP load generation for the benchmarks: `wrk` when installed, else a lean asyncio client.

Both post JSON bodies round-robin over keep-alive connections, each request with a unique
``Idempotency-Key``, in a closed loop (``concurrency`` requests in flight) for ``duration`` seconds,
in a process of their own so that the generator does not share the server's interpreter.

    python -m tools.bench.loadgen SPEC.json      # the asyncio generator; prints one JSON line

The asyncio client (``RawHttp``) is also what the end-to-end bench posts with, in process:
it costs a fraction of httpx per request, which matters on a two-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.bench.report import percentile

WRK = "/usr/bin/wrk"


@dataclass
class LoadSpec:
    host: str
    port: int
    path: str
    bodies: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    key_header: str = "Idempotency-Key"
    key_prefix: str = ""
    concurrency: int = 32
    duration: float = 10.0


@dataclass
class LoadResult:
    generator: str
    requests: int  # completed in the window
    ok: int  # 2xx
    duration_s: float
    statuses: dict[str, int]
    errors: int  # socket errors / timeouts
    p50_ms: float | None
    p99_ms: float | None

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


# --------------------------------------------------------------------------------------- raw client


class RawHttp:
    """One keep-alive HTTP/1.1 connection; requests are pre-rendered bytes; Content-Length bodies only."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connect()
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at < 0:
                raise ValueError("response without Content-Length")
            end = lower.index(b"\r\n", at + 2)
            body = await reader.readexactly(int(lower[at + 17 : end].strip()))
            if b"\r\nconnection: close" in lower:
                await self.close()
            return status, body
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def render_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> tuple[bytes, bytes]:
    """The request split around where a per-request header value goes: prefix + value + suffix."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines).encode()
    return head + b"\r\n", b"\r\n\r\n" + body


# ------------------------------------------------------------------------------- asyncio generator


async def _closed_loop(spec: LoadSpec) -> LoadResult:
    bodies = [b.encode() for b in spec.bodies]
    key_name = spec.key_header.encode() + b": "
    templates = [render_post(spec.host, spec.port, spec.path, spec.headers, b) for b in bodies]
    prefix = (spec.key_prefix or uuid.uuid4().hex[:12]).encode()
    counter = 0
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + spec.duration

    async def worker(n: int) -> None:
        nonlocal counter, errors
        conn = RawHttp(spec.host, spec.port)
        try:
            while time.perf_counter() < stop_at:
                counter += 1
                head, tail = templates[counter % len(templates)]
                raw = head + key_name + prefix + b"-%d" % counter + tail
                t = time.perf_counter()
                try:
                    status, _ = await conn.request(raw)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    errors += 1
                    await asyncio.sleep(0.01)
                    continue
                done = time.perf_counter()
                if done <= stop_at:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    latencies.append(done - t)
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(spec.concurrency)))
    elapsed = min(time.perf_counter(), stop_at) - started
    latencies.sort()
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    return LoadResult(
        generator="asyncio",
        requests=sum(statuses.values()),
        ok=ok,
        duration_s=elapsed,
        statuses=statuses,
        errors=errors,
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        return asyncio.new_event_loop()


def _main(argv: Sequence[str]) -> None:
    spec = LoadSpec(**json.loads(Path(argv[0]).read_text()))
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        result = runner.run(_closed_loop(spec))
    print(json.dumps(asdict(result)), flush=True)


# ------------------------------------------------------------------------------------------- wrk


def wrk_available() -> bool:
    choice = os.environ.get("GRANTLINE_BENCH_LOADGEN", "auto")
    return choice in ("auto", "wrk") and os.access(WRK, os.X_OK)


def _lua_string(s: str) -> str:
    level = 0
    while f"]{'=' * level}]" in s:
        level += 1
    eq = "=" * level
    return f"[{eq}[{s}]{eq}]"


def wrk_script(spec: LoadSpec) -> str:
    prefix = spec.key_prefix or uuid.uuid4().hex[:12]
    lines = ["local bodies = {"]
    lines += [f"  {_lua_string(b)}," for b in spec.bodies]
    lines += [
        "}",
        "local n = #bodies",
        "local counter = 0",
        "local threads = 0",
        "local all_threads = {}",
        "function setup(thread)",
        "  threads = threads + 1",
        "  thread:set('tid', threads)",
        "  table.insert(all_threads, thread)",
        "end",
        "statuses = {}",
        "function response(status, headers, body)",
        "  statuses[status] = (statuses[status] or 0) + 1",
        "end",
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in spec.headers.items()]
    lines += [
        "function request()",
        "  counter = counter + 1",
        f"  wrk.headers[ {_lua_string(spec.key_header)} ] = {_lua_string(prefix)} .. '-' .. tostring(tid) .. '-' .. counter",
        "  return wrk.format(nil, nil, nil, bodies[(counter % n) + 1])",
        "end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        "  io.write('WRKJSON ' .. summary.requests .. ' ' .. summary.duration .. ' ' .. e.status .. ' '",
        "    .. (e.connect + e.read + e.write + e.timeout) .. ' ' .. latency:percentile(50) .. ' '",
        "    .. latency:percentile(99) .. '\\n')",
        "  for _, t in ipairs(all_threads) do",
        "    for status, count in pairs(t:get('statuses')) do",
        "      io.write('WRKSTATUS ' .. status .. ' ' .. count .. '\\n')",
        "    end",
        "  end",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(spec: LoadSpec, workdir: Path) -> LoadResult:
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(wrk_script(spec))
    url = f"http://{spec.host}:{spec.port}{spec.path}"
    argv = [WRK, "-t1", f"-c{spec.concurrency}", f"-d{max(1, round(spec.duration))}s", "--timeout", "10s",
            "-s", str(script), url]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=spec.duration + 60)
    if res.returncode != 0:
        raise RuntimeError(f"wrk failed ({res.returncode}): {res.stdout}{res.stderr}")
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {res.stdout}{res.stderr}")
    fields = [float(x) for x in line.split()[1:]]
    data = dict(zip(("requests", "duration_us", "status_errors", "socket_errors", "p50_us", "p99_us"), fields,
                    strict=True))
    requests = int(data["requests"])
    bad = int(data["status_errors"])
    statuses: dict[str, int] = {}
    for ln in res.stdout.splitlines():
        if ln.startswith("WRKSTATUS "):
            _, status, count = ln.split()
            statuses[status] = statuses.get(status, 0) + int(float(count))
    return LoadResult(
        generator="wrk",
        requests=requests,
        ok=sum(v for k, v in statuses.items() if k.startswith("2")) if statuses else requests - bad,
        duration_s=int(data["duration_us"]) / 1e6,
        statuses=statuses,
        errors=int(data["socket_errors"]),
        p50_ms=round(int(data["p50_us"]) / 1000, 2),
        p99_ms=round(int(data["p99_us"]) / 1000, 2),
    )


def run_asyncio_generator(spec: LoadSpec, workdir: Path) -> LoadResult:
    path = workdir / f"load-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(asdict(spec)))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run([sys.executable, "-m", "tools.bench.loadgen", str(path)], capture_output=True, text=True,
                         timeout=spec.duration + 60, cwd=root, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"load generator failed ({res.returncode}): {res.stdout}{res.stderr}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return LoadResult(**data)


def generate(spec: LoadSpec, workdir: Path) -> LoadResult:
    """Load ``spec.path`` with wrk when installed (GRANTLINE_BENCH_LOADGEN=python forces the other)."""
    if wrk_available():
        return run_wrk(spec, workdir)
    return run_asyncio_generator(spec, workdir)


def generator_name() -> str:
    return "wrk" if wrk_available() else "asyncio (python -m tools.bench.loadgen)"


if __name__ == "__main__":
    _main(sys.argv[1:])
