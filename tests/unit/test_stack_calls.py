"""What `make up` says of calls for applications: the open ones, or that none is open and the
command that opens one (tools/stack/cli.py), against a stand-in for eligibility's GET /v1/calls."""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Iterator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from shared.policy.calls import CallTerms, call_problems
from shared.policy.catalog import load_catalog
from tools.stack.cli import _calls_summary


class _Calls(BaseHTTPRequestHandler):
    items: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        body = json.dumps({"items": self.items, "next_cursor": None}).encode()
        self.send_response(200 if self.path.startswith("/v1/calls?open=true") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def eligibility() -> Iterator[dict[str, str]]:
    server = HTTPServer(("127.0.0.1", 0), _Calls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"GRANTLINE_ELIGIBILITY_PORT": str(server.server_address[1]), "GRANTLINE_OPERATOR_TOKEN": "op-token"}
    finally:
        server.shutdown()
        server.server_close()


def test_with_no_call_open_it_says_so_and_prints_a_command_that_opens_one(eligibility: dict[str, str]) -> None:
    _Calls.items = []
    lines = _calls_summary(eligibility)
    assert lines[0].startswith("No call for applications is open")
    command = shlex.split(" ".join(line.rstrip("\\") for line in lines[3:]))
    assert command[:3] == ["curl", "-X", "POST"]
    assert command[3] == f"http://127.0.0.1:{eligibility['GRANTLINE_ELIGIBILITY_PORT']}/v1/calls"
    assert "Authorization: Bearer op-token" in command
    body = json.loads(command[command.index("-d") + 1])
    # A call the shipped catalog admits as it is.
    terms = CallTerms(id="call_x", program=body["program"], year=body["year"],
                      opens_at=datetime.fromisoformat(body["opens_at"]),
                      closes_at=datetime.fromisoformat(body["closes_at"]),
                      event_from=date.fromisoformat(body["event_window"]["from"]),
                      event_to=date.fromisoformat(body["event_window"]["to"]),
                      catalog_version=load_catalog().version, budget_fen=None)
    assert call_problems(terms, load_catalog()) == []


def test_open_calls_are_listed(eligibility: dict[str, str]) -> None:
    _Calls.items = [{"id": "call_1", "program": "GT-EQUITY", "year": 2025, "title": "t",
                     "closes_at": "2027-01-31T09:00:00+00:00"}]
    assert _calls_summary(eligibility) == [
        "Open calls for applications:", "  GT-EQUITY 2025  call_1  until 2027-01-31T09:00:00+00:00  t"]


def test_an_unreachable_eligibility_still_gets_the_command() -> None:
    lines = _calls_summary({"GRANTLINE_ELIGIBILITY_PORT": "1", "GRANTLINE_OPERATOR_TOKEN": "t"})
    assert lines[0].startswith("Could not ask eligibility") and lines[3].lstrip().startswith("curl")
