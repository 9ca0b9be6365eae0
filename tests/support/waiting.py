"""Waiting on an asynchronous system, always with a deadline.

* ``eventually`` / ``eventually_sync``: poll until a check holds, or fail saying what was awaited.
* ``wait_until_quiet``: until the given services have nothing left in flight (every consumer's
  lag and every outbox backlog zero, as their /metrics report them). Use it before asserting
  that something did *not* happen, instead of sleeping and hoping the system was done.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.observability.metrics import CONSUMER_LAG, OUTBOX_BACKLOG

IN_FLIGHT = ("grantline_consumer_lag", "grantline_outbox_backlog")


async def eventually(check: Callable[[], Awaitable[Any]], what: str = "", timeout_s: float = 30.0,
                     every_s: float = 0.05, until: Callable[[Any], bool] = bool) -> Any:
    """The first value `check` returns that satisfies `until` (by default: is truthy) within
    `timeout_s` seconds; on time out, the error names `what` and the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if until(last):
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what or check}: not within {timeout_s}s (last: {last!r})")


def eventually_sync(check: Callable[[], Any], what: str = "", timeout_s: float = 30.0,
                    every_s: float = 0.05, until: Callable[[Any], bool] = bool) -> Any:
    """`eventually` for code without an event loop (end-to-end tests drive processes)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if until(last):
            return last
        time.sleep(every_s)
    raise AssertionError(f"{what or check}: not within {timeout_s}s (last: {last!r})")


async def in_flight(service: httpx.AsyncClient) -> dict[str, float]:
    """What `service` still has to do, from one scrape of its /metrics: each consumer's lag and
    its outbox backlog that is not zero (an unreadable backlog, NaN, counts as not zero)."""
    # Apps run in one test process share one registry, and each scrape refreshes only its own
    # app's gauges: without this, a gauge left by an app of an earlier test would read as ours.
    CONSUMER_LAG.clear()
    OUTBOX_BACKLOG.clear()
    page = await service.get("/metrics")
    page.raise_for_status()
    busy: dict[str, float] = {}
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            if sample.name in IN_FLIGHT and (math.isnan(sample.value) or sample.value != 0):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                busy[f"{sample.name}{{{labels}}}"] = sample.value
    return busy


async def wait_until_quiet(*services: httpx.AsyncClient, timeout_s: float = 30.0, settle_s: float = 0.5,
                           every_s: float = 0.05) -> None:
    """Until every consumer lag and outbox backlog of `services` has read zero for `settle_s`.

    One zero reading is not enough: a consumer has taken a batch off the broker (lag 0) before
    its transaction commits the outbox rows that will be the next service's input."""
    loop = asyncio.get_running_loop()
    quiet_since: float | None = None
    busy: dict[str, float] = {}

    async def settled() -> bool:
        nonlocal quiet_since, busy
        busy = {}
        for service in services:
            busy.update(await in_flight(service))
        now = loop.time()
        if busy:
            quiet_since = None
            return False
        quiet_since = now if quiet_since is None else quiet_since
        return now - quiet_since >= settle_s

    try:
        await eventually(settled, "the services quiet", timeout_s=timeout_s, every_s=every_s)
    except AssertionError:
        raise AssertionError(f"the services are not quiet within {timeout_s}s: {busy}") from None
