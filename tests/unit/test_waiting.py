"""The suite's waiting helpers (tests/support/waiting.py): deadlines, and what counts as quiet."""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.support.waiting import eventually, eventually_sync, in_flight, wait_until_quiet


async def test_eventually_returns_the_first_value_that_holds() -> None:
    counter = itertools.count()

    async def next_value() -> int:
        return next(counter)

    assert await eventually(next_value, "a count of 3", until=lambda n: n >= 3, every_s=0) == 3


async def test_eventually_fails_at_its_deadline_naming_what_and_the_last_value() -> None:
    async def never() -> str:
        return ""

    with pytest.raises(AssertionError, match=r"the impossible: not within 0.05s \(last: ''\)"):
        await eventually(never, "the impossible", timeout_s=0.05, every_s=0.01)


def test_eventually_sync_alike() -> None:
    counter = itertools.count()
    assert eventually_sync(lambda: next(counter), "a truthy count", every_s=0) == 1
    with pytest.raises(AssertionError, match="nothing: not within"):
        eventually_sync(lambda: None, "nothing", timeout_s=0.05, every_s=0.01)


def metrics_service(pages: list[str]) -> httpx.AsyncClient:
    """A service whose /metrics answers each page in turn, then the last one again."""
    served = iter(pages)
    last = [pages[-1]]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        last[0] = next(served, last[0])
        return httpx.Response(200, text=last[0])

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://test")


BUSY = """# TYPE grantline_consumer_lag gauge
grantline_consumer_lag{consumer="notify.awards",service="notify"} 3.0
# TYPE grantline_outbox_backlog gauge
grantline_outbox_backlog{service="notify"} 0.0
"""
QUIET = BUSY.replace("} 3.0", "} 0.0")
UNREADABLE = QUIET.replace('{service="notify"} 0.0', '{service="notify"} NaN')


async def test_in_flight_names_each_gauge_that_is_not_zero() -> None:
    async with metrics_service([BUSY]) as service:
        assert await in_flight(service) == {
            'grantline_consumer_lag{consumer=notify.awards,service=notify}': 3.0}
    async with metrics_service([UNREADABLE]) as service:
        assert list(await in_flight(service)) == ["grantline_outbox_backlog{service=notify}"]
    async with metrics_service([QUIET]) as service:
        assert await in_flight(service) == {}


async def test_quiet_waits_until_every_reading_is_zero_for_the_settle_time() -> None:
    async with metrics_service([BUSY, BUSY, QUIET, BUSY, QUIET]) as service:
        await wait_until_quiet(service, timeout_s=5, settle_s=0.05, every_s=0.01)
        assert await in_flight(service) == {}


async def test_never_quiet_fails_naming_what_is_in_flight() -> None:
    async with metrics_service([BUSY]) as service:
        with pytest.raises(AssertionError, match=r"notify\.awards"):
            await wait_until_quiet(service, timeout_s=0.1, settle_s=0.05, every_s=0.01)
