"""Service apps run inside the test process, talked to over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import SimpleNamespace

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.app import create_app as eligibility_app
from services.intake.app import create_app as intake_app
from services.ledger.app import create_app as ledger_app
from services.notify.app import create_app as notify_app
from shared.config.settings import Settings
from tests.support.waiting import eventually

SERVICES = {"intake": intake_app, "eligibility": eligibility_app, "ledger": ledger_app, "notify": notify_app}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (relay, consumers) and talk to it over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def routes_only(app: FastAPI, ctx: RoutesOnly) -> AsyncIterator[httpx.AsyncClient]:
    """The app's routes on `ctx`, without its lifespan (no relay, no consumers)."""
    app.state.ctx = ctx
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def healthy(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200


@asynccontextmanager
async def running_services(
    settings: Settings, names: Sequence[str] = tuple(SERVICES)
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The services `names` (all four by default) in process together, each with its lifespan,
    once every one answers /healthz: a client per service, by name."""
    async with AsyncExitStack() as exits:
        clients = {name: await exits.enter_async_context(running(SERVICES[name](settings))) for name in names}
        for client in clients.values():
            await eventually(lambda c=client: healthy(c), "healthz")
        yield clients


class RoutesOnly(SimpleNamespace):
    """The part of a ServiceContext that routes use (settings, sessions, units of work,
    snapshots), for driving routes without the lifespan's relay and consumers."""

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        async with self.maker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        async with self.maker() as session, session.begin():
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            yield session
