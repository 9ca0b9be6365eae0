"""A partner's webhook receiver on loopback: verifies signatures, dedupes by event id."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}  # event id → body, first delivery wins
        self.deliveries = 0
        self.bad_signatures = 0
        self.secrets: dict[str, str] = {}  # partner id → webhook secret
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
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
