"""The four services as real processes (uvicorn), for end-to-end and fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tools.stack.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "eligibility", "ledger", "notify")


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    extras: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str) -> None:
        self._spawn(self.services[name])

    def start_extra(self, name: str) -> ServiceProcess:
        """A second instance of a service: same settings, same consumer groups, another port."""
        svc = ServiceProcess(name, free_port(), self.log_dir / f"{name}-{len(self.extras) + 2}.log")
        self.extras.append(svc)
        self._spawn(svc)
        return svc

    def _spawn(self, svc: ServiceProcess) -> None:
        name = svc.name
        log = svc.log_path.open("ab")
        svc.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"services.{name}.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(svc.port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, names: tuple[str, ...] = SERVICES, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            svc = self.services[name]
            while True:
                if svc.proc is not None and svc.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.tail(name)}")
                try:
                    if httpx.get(svc.url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not healthy: {self.tail(name)}")
                time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.services[name].proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(timeout=20)

    def stop_all(self) -> None:
        everything = [*self.services.values(), *self.extras]
        for svc in everything:
            proc = svc.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for svc in everything:
            proc = svc.proc
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.services[name].log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def service_process(
    name: str, env_overrides: dict[str, str], log_path: Path, timeout_s: float = 30
) -> Iterator[str]:
    """One service as a uvicorn process on a free port; yields its base URL once /healthz is 200."""
    stack = make_stack(env_overrides, log_path.parent)
    svc = stack.services[name]
    svc.log_path = log_path
    stack.start(name)
    try:
        stack.wait_healthy((name,), timeout_s=timeout_s)
        yield svc.url
    finally:
        stack.stop_all()


def make_stack(env_overrides: dict[str, str], log_dir: Path) -> Stack:
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(ROOT)
    stack = Stack(env=env, log_dir=log_dir)
    for name in SERVICES:
        port = free_port()
        stack.services[name] = ServiceProcess(name, port, log_dir / f"{name}.log")
    return stack
