"""Optional sampling profiles of the services during a measured run (py-spy).

    GRANTLINE_BENCH_PROFILE=DIR [GRANTLINE_BENCH_PROFILE_FORMAT=flamegraph|speedscope|raw] make bench

writes DIR/<section>-<service>.<svg|json|txt> (``raw`` = collapsed stacks, greppable);
GRANTLINE_BENCH_PROFILE_BLOCKING=1 samples with the process paused (complete, slower). Sampling takes
CPU on a two-core machine: figures from a profiled run read lower than from a plain one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tools.bench.stack import Proc

_SUFFIX = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}


def profile_dir() -> Path | None:
    raw = os.environ.get("GRANTLINE_BENCH_PROFILE")
    return Path(raw).resolve() if raw else None


def _py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiles:
    """py-spy record attached to the given processes until ``stop`` (a no-op when not asked for)."""

    def __init__(self, section: str) -> None:
        self.section = section
        self.running: list[subprocess.Popen[bytes]] = []
        self.written: list[Path] = []

    def start(self, *procs: Proc) -> None:
        out_dir, exe = profile_dir(), _py_spy()
        if out_dir is None:
            return
        if exe is None:
            print("[bench] GRANTLINE_BENCH_PROFILE set but py-spy not found (pip install py-spy)", file=sys.stderr)
            return
        fmt = os.environ.get("GRANTLINE_BENCH_PROFILE_FORMAT", "flamegraph")
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in procs:
            path = out_dir / f"{self.section}-{p.name}.{_SUFFIX.get(fmt, 'out')}"
            self.running.append(
                subprocess.Popen(
                    [exe, "record", "--pid", str(p.pid), "--rate", "100", *self._blocking(), "--format", fmt,
                     "-o", str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            self.written.append(path)

    @staticmethod
    def _blocking() -> list[str]:
        # Non-blocking sampling leaves the service's speed alone but misses samples on a busy
        # machine; GRANTLINE_BENCH_PROFILE_BLOCKING=1 pauses it per sample for complete stacks.
        return [] if os.environ.get("GRANTLINE_BENCH_PROFILE_BLOCKING") == "1" else ["--nonblocking"]

    def stop(self) -> None:
        for proc in self.running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self.running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.running.clear()
        for path in self.written:
            if path.exists():
                print(f"[bench] profile written: {path}", file=sys.stderr, flush=True)
