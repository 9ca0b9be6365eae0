"""The per-partner token bucket behind 429 + Retry-After."""

from __future__ import annotations

from shared.web.ratelimit import RateLimiter, retry_after_header


def test_a_burst_is_admitted_then_refused_with_the_wait() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=3)
    assert [limiter.check("p", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("p", now=0.0)
    assert wait == 0.5
    assert retry_after_header(wait) == "1"


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=3)
    for _ in range(3):
        limiter.check("p", now=0.0)
    assert limiter.check("p", now=0.5) == 0.0  # one token back after half a second
    assert limiter.check("p", now=0.5) > 0
    for _ in range(3):
        assert limiter.check("p", now=100.0) == 0.0  # refilled, but only to the burst
    assert limiter.check("p", now=100.0) > 0


def test_partners_do_not_share_a_bucket_and_zero_rate_means_off() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1)
    assert limiter.check("a", now=0.0) == 0.0
    assert limiter.check("a", now=0.0) > 0
    assert limiter.check("b", now=0.0) == 0.0
    off = RateLimiter(rate_per_s=0, burst=0)
    assert all(off.check("x") == 0.0 for _ in range(1000))
