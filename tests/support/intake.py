"""Driving an in-process intake as partners and operators do: partners, application bodies,
waiting on an application, and what intake has stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from shared.config.settings import Settings
from shared.db.engine import make_engine
from tests.support.auth import OP
from tests.support.waiting import eventually
from tools.samples import make_body

PUBLIC_CALLBACK = "https://93.184.216.34/grantline/hook"


async def new_partner(client: httpx.AsyncClient, name: str = "Partner",
                      callback_url: str = PUBLIC_CALLBACK) -> dict[str, Any]:
    """A partner registered by the operator: its id, api_key and webhook_secret."""
    r = await client.post("/v1/partners", json={"name": name, "callback_url": callback_url}, headers=OP)
    assert r.status_code == 201, r.text
    return dict(r.json())


def equity(subject: str = "ROUND-2024-B", **over: Any) -> dict[str, Any]:
    """An eligible GT-EQUITY body (1600000.00 entitlement) for `subject`."""
    body = make_body("GT-EQUITY")
    body["subject"] = subject
    body.update(over)
    return body


async def intake_scalar(settings: Settings, sql: str, **params: Any) -> Any:
    """The one value `sql` selects in intake's schema."""
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql), params)
    finally:
        await engine.dispose()


async def counts(settings: Settings) -> tuple[int, int]:
    """(applications stored, application.received events in the outbox) in intake's schema."""
    engine = make_engine(settings.database_url, "intake")
    try:
        async with engine.connect() as conn:
            apps = await conn.scalar(text("SELECT count(*) FROM applications"))
            events = await conn.scalar(
                text("SELECT count(*) FROM outbox WHERE type = 'application.received'")
            )
    finally:
        await engine.dispose()
    return int(apps or 0), int(events or 0)


async def fetch_until(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                      until: Callable[[Any], bool], timeout_s: float = 20) -> Any:
    """The JSON body of GET `url` once `until(body)` holds."""

    async def body() -> Any:
        return (await client.get(url, headers=headers)).json()

    return await eventually(body, f"GET {url} as awaited", timeout_s=timeout_s, until=until)
