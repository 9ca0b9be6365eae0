"""SSRF where it needs the services: a partner's callback URL is checked when intake registers
the partner, and again by notify's dispatcher at every delivery (the check itself, case by case:
tests/unit/test_ssrf.py)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.intake.app import create_app as intake_app
from services.notify.dispatcher.handlers import Dispatcher
from services.notify.domain import delivery_for
from services.notify.repository import SqlNotifyRepository
from shared.config.settings import Settings
from tests.support.apps import running
from tests.support.auth import OP
from tests.support.notify import scratch_schema
from tests.support.receiver import scripted_receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(intake_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "http://93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
    ],
)
async def test_partner_callback_must_be_public_https(intake: httpx.AsyncClient, url: str) -> None:
    r = await intake.post("/v1/partners", json={"name": "Bad", "callback_url": url}, headers=OP)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "callback_url"


async def test_callback_refused_by_the_ssrf_check_at_delivery_is_parked(settings: Settings) -> None:
    """The directory says loopback over plain http (say, DNS changed after registration):
    without GRANTLINE_ALLOW_PRIVATE_CALLBACKS nothing is sent; each attempt records why, and
    the delivery parks. A dispatcher on its own scratch schema, so no running notify instance
    (one that allows private callbacks) takes the row."""
    s = settings.model_copy(update={"webhook_backoff_seconds": 0.05, "webhook_attempts_max": 3,
                                    "allow_private_callbacks": False})
    async with scratch_schema(s, prefix="notify_ssrf_") as maker, scripted_receiver() as hook:
        async with maker() as session, session.begin():
            await session.execute(
                text("INSERT INTO partners (id, name, callback_url, api_key_hash) VALUES "
                     "('ptn_ssrf', 'p', :u, :h)"), {"u": hook.url, "h": secrets.token_hex(32)})
            await SqlNotifyRepository(session).add_deliveries([delivery_for(
                uuid.uuid4(), "award.decided", "app_ssrf", "ptn_ssrf", {"x": 1})])
        dispatcher = Dispatcher(maker, s, timeout_s=1.0, poll_s=0.02)
        task = asyncio.create_task(dispatcher.run())
        try:
            async def parked() -> Any:
                async with maker() as session:
                    return await session.scalar(
                        text("SELECT attempts FROM deliveries WHERE status = 'parked'"))

            assert await eventually(parked, what="the refused delivery parked") == 3
        finally:
            dispatcher.stop()
            await asyncio.wait_for(task, timeout=5)
        async with maker() as session:
            rows = (await session.execute(
                text("SELECT outcome, error FROM delivery_attempts ORDER BY attempt"))).all()
        assert [r.outcome for r in rows] == ["refused"] * 3
        assert "SSRF" in rows[0].error and "https" in rows[0].error
        assert hook.requests == []
