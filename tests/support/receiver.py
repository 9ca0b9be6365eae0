"""Partners' webhook receivers on loopback.

* ``Receiver``: a partner that verifies signatures and dedupes by event id (a thread of its own,
  for end-to-end tests whose services run as processes).
* ``scripted_receiver``: a minimal HTTP/1.1 server in the test's event loop that answers each
  request as scripted (a status, or never) and keeps every request as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

HANG = -1  # a scripted answer: accept the request and never answer


class Receiver:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}  # event id → body, first delivery wins
        self.deliveries = 0
        self.bad_signatures = 0
        self.torn_bodies = 0
        self.secrets: dict[str, str] = {}  # partner id → webhook secret
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    # The sender died mid-request (a SIGKILL test): a torn body, not a forged one.
                    with receiver._lock:
                        receiver.torn_bodies += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                ok = receiver._accept(raw, self.headers.get("Grantline-Signature", ""), self.path)
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _accept(self, raw: bytes, signature: str, path: str) -> bool:
        partner_id = path.rstrip("/").rsplit("/", 1)[-1]  # callbacks end in /<name registered in secrets>
        secret = self.secrets.get(partner_id)
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        if secret is None or "t" not in parts or "v1" not in parts:
            with self._lock:
                self.bad_signatures += 1
            return False
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]):
            with self._lock:
                self.bad_signatures += 1
            return False
        body = json.loads(raw)
        with self._lock:
            self.deliveries += 1
            self.events.setdefault(body["id"], body)
        return True

    def decisions(self) -> dict[str, dict[str, Any]]:
        """application id → its award.decided body (deduplicated by event id)."""
        with self._lock:
            return {b["application_id"]: b for b in self.events.values() if b["type"] == "award.decided"}

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class ScriptedReceiver:
    """`behaviour(n)` gives the status for the n-th request (HANG: never answer)."""

    behaviour: Callable[[int], int] = lambda n: 200
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> ScriptedReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/grantline"

    async def stop(self) -> None:
        self._closing.set()  # hanging handlers return (closing their connection)
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(headers, body, time.monotonic()))
            status = self.behaviour(len(self.requests))
            if status == HANG:
                await self._closing.wait()
                return
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
                "Connection: close\r\n\r\nnope".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.json["type"] == event_type]


@contextlib.asynccontextmanager
async def scripted_receiver(behaviour: Callable[[int], int] = lambda n: 200) -> AsyncIterator[ScriptedReceiver]:
    r = await ScriptedReceiver(behaviour).start()
    try:
        yield r
    finally:
        await r.stop()
