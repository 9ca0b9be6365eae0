"""What a running service holds: settings, engine, producer, relay and consumer loops, with
typed hooks for its own workers. A service that keeps workers of its own subclasses it, so
every worker is a typed attribute rather than an entry in a dict."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config.settings import Settings
from shared.db.uow import read_snapshot, unit_of_work
from shared.messaging.consumer import ConsumerLoop
from shared.messaging.outbox import OutboxRelay

StopHook = Callable[[], None]
_BROKER_CHECK_TTL_SECONDS = 1.0
_BROKER_CHECK_TIMEOUT_SECONDS = 2.0


@dataclass
class BrokerHealth:
    """The broker's reachability, asked at most once a second however often /healthz is hit."""

    checked_at: float = 0.0
    reachable: bool = False

    async def check(self, producer: AIOKafkaProducer) -> bool:
        now = time.monotonic()
        if self.checked_at and now - self.checked_at < _BROKER_CHECK_TTL_SECONDS:
            return self.reachable
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=_BROKER_CHECK_TIMEOUT_SECONDS)
            self.reachable = True
        except Exception:
            self.reachable = False
        self.checked_at = now
        return self.reachable


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    loops: list[ConsumerLoop] = field(default_factory=list)
    broker_ready: asyncio.Event = field(default_factory=asyncio.Event)
    broker_health: BrokerHealth = field(default_factory=BrokerHealth)
    stop_hooks: list[StopHook] = field(default_factory=list)

    def unit_of_work(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction for a change and its outbox events; the relay is woken after commit."""
        return unit_of_work(self.maker, after_commit=self.relay.wake)

    def snapshot(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A read-only transaction on one snapshot (see `shared.db.uow.snapshot`)."""
        return read_snapshot(self.maker)

    def on_stop(self, hook: StopHook) -> None:
        """Call `hook` when the service stops, before consumers and the relay drain: a worker is
        told to stop taking new work while the plumbing it writes through is still up."""
        self.stop_hooks.append(hook)


