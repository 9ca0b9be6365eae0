"""Group commit in intake: concurrent requests share transactions, keys still decide, and one bad
row costs only its own request."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.intake.app import create_app
from services.intake.submissions.domain import Submission
from services.intake.submissions.handlers import GroupCommit, prepare_submission
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from tests.support.apps import running
from tests.support.auth import partner_headers
from tests.support.intake import counts, equity, new_partner
from tests.support.policy import publish_sample_calls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with running(app) as client:
        await publish_sample_calls(settings, client)
        yield app, client


async def test_concurrent_requests_share_transactions_and_each_key_makes_one_application(
    intake: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    app, client = intake
    partner = await new_partner(client)
    keys = [str(uuid.uuid4()) for _ in range(20)]
    before = await counts(settings)
    group = app.state.ctx.submissions
    assert isinstance(group, GroupCommit)
    transactions_before = group.transactions
    replies = await asyncio.gather(*(
        client.post("/v1/applications", json=equity(f"GC-{k}"), headers=partner_headers(partner, k))
        for k in keys * 3
    ))
    assert {r.status_code for r in replies} == {202}
    by_key: dict[str, set[str]] = {}
    for key, reply in zip(keys * 3, replies, strict=True):
        by_key.setdefault(key, set()).add(reply.json()["id"])
    assert all(len(ids) == 1 for ids in by_key.values())
    after = await counts(settings)
    assert (after[0] - before[0], after[1] - before[1]) == (20, 20)
    assert group.transactions - transactions_before < 60


async def test_a_row_the_database_refuses_fails_only_its_own_request(
    intake: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    _, client = intake
    partner = await new_partner(client)
    engine = make_engine(settings.database_url, "intake")
    group = GroupCommit(make_sessionmaker(engine))
    application, errors = validate_application(equity("GC-BAD"), load_catalog())
    assert application is not None, errors

    def submission(key: str) -> Submission:
        return prepare_submission(partner_id=partner["id"], idempotency_key=key, fingerprint="f",
                                  application=application, catalog=load_catalog(), call_id="call_group_commit",
                                  received_at=datetime.now(UTC), correlation=None)

    good_a, good_b = submission(str(uuid.uuid4())), submission(str(uuid.uuid4()))
    # jsonb refuses a NUL character: this row breaks the shared statement.
    bad = dataclasses.replace(submission(str(uuid.uuid4())), input='{"x": "\\u0000"}')
    results = await asyncio.gather(*(group.submit(s) for s in (good_a, bad, good_b)),
                                   return_exceptions=True)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], DBAPIError)
    async with engine.connect() as conn:
        stored = set((await conn.scalars(text("SELECT id FROM applications WHERE id = ANY(:ids)"),
                                         {"ids": [good_a.app_id, bad.app_id, good_b.app_id]})).all())
    await engine.dispose()
    assert stored == {good_a.app_id, good_b.app_id}
