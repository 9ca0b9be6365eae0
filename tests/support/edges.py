"""Helpers for the hardened edges' tests: a DNS server that changes its answers (rebinding), a
network backend that records where it was asked to connect instead of connecting, and a request
body that streams megabytes from a generator without holding them."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import psutil


@dataclass
class ScriptedResolver:
    """Answers each lookup with the next of `answers` (the last one again once they run out),
    as a rebinding DNS server would: public to the check, loopback to the connect."""

    answers: list[list[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked) - 1, len(self.answers) - 1)]


class RecordingStream(httpcore.AsyncNetworkStream):
    """A connection that answers every request with 204 and records what TLS it was asked for."""

    def __init__(self, backend: RecordingBackend) -> None:
        self.backend = backend
        self._reply = [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"]

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._reply.pop(0) if self._reply else b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.backend.sent += buffer
        self._reply = [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"]

    async def aclose(self) -> None:
        pass

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        self.backend.tls_server_hostnames.append(server_hostname)
        self.backend.tls_verifies.append(ssl_context.verify_mode == ssl.CERT_REQUIRED and ssl_context.check_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


@dataclass
class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Where connections were asked to go (host, port), and the bytes sent on them."""

    connects: list[tuple[str, int]] = field(default_factory=list)
    tls_server_hostnames: list[str | None] = field(default_factory=list)
    tls_verifies: list[bool] = field(default_factory=list)
    sent: bytes = b""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return RecordingStream(self)

    async def sleep(self, seconds: float) -> None:
        pass


@dataclass
class CountingBody:
    """`total` bytes in `chunk`-sized pieces, made as they are sent (never held whole); `sent`
    says how many the client handed to the connection before the server stopped it."""

    total: int
    chunk: int = 64 * 1024
    sent: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body for an httpx.AsyncClient."""
        for piece in self.sync_chunks():
            yield piece

    def sync_chunks(self) -> Iterator[bytes]:
        """The body for an httpx.Client."""
        piece = b"x" * self.chunk
        while self.sent < self.total:
            self.sent += len(piece)
            yield piece


def process_serving(url: str) -> psutil.Process:
    """The child process of this one listening on `url`'s port (a service started by
    tests/support/processes.py)."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for child in psutil.Process().children(recursive=True):
        try:
            listening = child.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in listening):
            return child
    raise AssertionError(f"no child process listens on port {port}")
