"""A 200 MB chunked body against a service as it runs in production (a uvicorn process): refused
without credentials, or at the body limit with them, after at most the limit (plus what the
sockets buffer) was sent, and the process's memory stays flat (before the limit was counted while
reading, intake read all 200 MB and went from 100 MB to 540 MB)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.auth import OP
from tests.support.edges import CountingBody, process_serving
from tests.support.processes import service_process

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
BODY = 200 * MB
# What the client may have handed to the connection before the refusal reached it: the limit
# (64 KiB) plus the sockets' buffers on loopback, nowhere near the 200 MB offered.
SENT_MAX = 16 * MB
RSS_GROWTH_MAX = 30 * MB


def post_huge(url: str, headers: dict[str, str]) -> tuple[httpx.Response, int]:
    body = CountingBody(total=BODY)
    with httpx.Client(timeout=60) as client:
        r = client.post(url, content=body.sync_chunks(), headers=headers)
    return r, body.sent


@pytest.mark.parametrize(("service", "path", "content_type", "credential", "statuses"), [
    ("intake", "/v1/partners", "application/json", {}, {401}),
    ("intake", "/v1/partners", "application/json", OP, {413}),
    ("ledger", "/dashboard/login", "application/x-www-form-urlencoded", {}, {413}),
])
def test_a_200_mb_chunked_body_is_refused_and_memory_stays_flat(
    fresh_db_dsn: str, kafka_bootstrap: str, topic_namespace: str, service: str, path: str, content_type: str,
    credential: dict[str, str], statuses: set[int],
) -> None:
    with service_process(service, fresh_db_dsn, kafka_bootstrap, topic_namespace, {},
                         f"edges-{service}.log") as url:
        proc = process_serving(url)
        before = proc.memory_info().rss
        for _ in range(3):
            r, sent = post_huge(url + path, {**credential, "Content-Type": content_type})
            assert r.status_code in statuses, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["connection"] == "close"
            assert sent < SENT_MAX, f"{sent / MB:.1f} MB sent before the refusal"
        growth = proc.memory_info().rss - before
        assert growth < RSS_GROWTH_MAX, f"RSS grew {growth / MB:.1f} MB"
        print(f"{service} {path}: last sent {sent / MB:.2f} MB, RSS {before / MB:.0f} MB → "
              f"{(before + growth) / MB:.0f} MB")
