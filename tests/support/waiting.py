"""Waiting on an asynchronous system: poll until a check holds, or fail saying what was awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], what: str = "", timeout: float = 30.0,
                     every: float = 0.05) -> Any:
    """The first truthy value `check` returns within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"{what or check}: not within {timeout}s (last: {last!r})")
