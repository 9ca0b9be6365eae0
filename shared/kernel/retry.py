"""The one retry/backoff helper: doubling waits with a ceiling, reset on success. Every loop
that waits for a dependency to come back (broker, database, a busy relay) uses it, so the
bounds live in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Backoff:
    first_seconds: float = 0.2
    max_seconds: float = 5.0
    factor: float = 2.0
    _next_seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        assert 0 < self.first_seconds <= self.max_seconds and self.factor >= 1
        self._next_seconds = self.first_seconds

    def next_delay(self) -> float:
        """The wait before the next try; each call doubles the following one, up to the ceiling."""
        delay = self._next_seconds
        self._next_seconds = min(self._next_seconds * self.factor, self.max_seconds)
        return delay

    def reset(self) -> None:
        self._next_seconds = self.first_seconds

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())
