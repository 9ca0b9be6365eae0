"""`/v1/announcements` (and its page) and `/v1/deliveries` a page at a time: paging through
either list yields every row once, in the order of the whole list, across rows of the same
time; filters hold on every page; the limit has a maximum; a cursor of another list, or none
this API handed out, is a 422 naming `cursor`."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.app import create_app
from services.notify.handlers import record_award_events
from services.notify.repository import SqlNotifyRepository
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import upgrade
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import OP
from tests.support.notify import decided, revoked
from tests.support.paging import read_pages

pytestmark = pytest.mark.integration

AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


async def record(maker: async_sessionmaker[AsyncSession], events: list[Event], now: datetime) -> None:
    def refuse(event: Event, error: BaseException | str) -> None:
        raise AssertionError(f"{event.type} dead-lettered: {error}")

    async with maker() as session, session.begin():
        await record_award_events(SqlNotifyRepository(session), events, refuse, notice_period_seconds=3600, now=now)


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A notify schema of its own: three batches of decisions (each batch published at one
    instant, so the order within it is by application id), two of them revoked, some rejected
    (deliveries only), and one program of another name."""
    schema = "notify_lists_" + secrets.token_hex(3)
    upgrade(settings.database_url, "notify", schema=schema)
    engine = make_engine(settings.database_url, schema)
    maker = make_sessionmaker(engine)
    for batch in range(3):
        events = [decided("ptn_lists", status="approved", awarded=f"{1000 + i}.00")[0] for i in range(5)]
        events += [decided("ptn_lists", status="rejected", awarded="0.00")[0] for _ in range(2)]
        events += [decided("ptn_lists", status="approved", program="GT-CLIN")[0]]
        if batch == 1:
            events += [revoked(events[0]), revoked(events[3])]
        await record(maker, events, AT + timedelta(hours=batch))
    yield maker
    await engine.dispose()


@pytest.fixture
async def client(settings: Settings, maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as c:
        yield c


async def pages(client: httpx.AsyncClient, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    return await read_pages(client, path, limit, OP, **params)


def flat(found: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for page in found for item in page]


@pytest.mark.parametrize(("path", "expected"), [("/v1/announcements", 3 * 6 - 2), ("/v1/deliveries", 3 * 8 + 2)])
async def test_paging_yields_each_row_once_in_the_order_of_the_whole_list(
    client: httpx.AsyncClient, path: str, expected: int
) -> None:
    [whole] = await pages(client, path, 500)
    assert len(whole) == expected
    for limit in (1, 2, 5, expected - 1, expected):
        found = await pages(client, path, limit)
        assert flat(found) == whole
        assert all(len(page) == limit for page in found[:-1]) and 0 < len(found[-1]) <= limit


async def test_the_lists_are_newest_first_and_filters_hold_on_every_page(client: httpx.AsyncClient) -> None:
    [whole] = await pages(client, "/v1/announcements", 500)
    assert [i["published_at"] for i in whole] == sorted((i["published_at"] for i in whole), reverse=True)
    clin = flat(await pages(client, "/v1/announcements", 2, program="GT-CLIN"))
    assert [i["program"] for i in clin] == ["GT-CLIN"] * 3
    assert clin == [i for i in whole if i["program"] == "GT-CLIN"]
    [deliveries] = await pages(client, "/v1/deliveries", 500)
    assert [d["created_at"] for d in deliveries] == sorted((d["created_at"] for d in deliveries), reverse=True)
    revoked_app = next(d["application_id"] for d in deliveries if d["event_type"] == "award.revoked")
    one_app = flat(await pages(client, "/v1/deliveries", 1, application_id=revoked_app))
    assert one_app == [d for d in deliveries if d["application_id"] == revoked_app] and len(one_app) == 2


async def test_the_page_links_to_the_next_page_with_the_same_query(client: httpx.AsyncClient) -> None:
    first = await client.get("/announcements", params={"program": "GT-EQUITY", "limit": 4})
    assert first.status_code == 200
    [link] = re.findall(r'<a href="([^"]+)">下一页 Next page</a>', first.text)
    second = await client.get("/announcements" + unescape(link))
    assert second.status_code == 200 and "program=GT-EQUITY" in unescape(link) and "limit=4" in unescape(link)
    shown = await client.get("/v1/announcements", params={"program": "GT-EQUITY", "limit": 8})
    subjects = [i["subject"] for i in shown.json()["items"]]
    assert all(s in first.text for s in subjects[:4]) and all(s in second.text for s in subjects[4:8])
    last = await client.get("/announcements", params={"program": "GT-EQUITY", "limit": 1000})
    assert "Next page" not in last.text


@pytest.mark.parametrize("path", ["/v1/announcements", "/v1/deliveries", "/announcements"])
async def test_a_foreign_or_forged_cursor_is_refused(client: httpx.AsyncClient, path: str) -> None:
    other = "/v1/deliveries" if path != "/v1/deliveries" else "/v1/announcements"
    foreign = (await client.get(other, params={"limit": 1}, headers=OP)).json()["next_cursor"]
    assert foreign is not None
    forged = [
        foreign,
        "nonsense",
        base64.urlsafe_b64encode(b"announcements:yesterday/app_1").decode(),
        base64.urlsafe_b64encode(b"deliveries:2024-05-01T08:00:00/dlv_1").decode(),  # no time zone
        base64.urlsafe_b64encode(b"announcements:2024-05-01T08:00:00+00:00/").decode(),
    ]
    for cursor in forged:
        resp = await client.get(path, params={"cursor": cursor}, headers=OP)
        assert resp.status_code == 422, (cursor, resp.text)
        if path != "/announcements":
            assert [e["field"] for e in resp.json()["errors"]] == ["cursor"]


@pytest.mark.parametrize(("path", "maximum"), [("/v1/announcements", 1000), ("/v1/deliveries", 500)])
async def test_the_limit_has_a_maximum(client: httpx.AsyncClient, path: str, maximum: int) -> None:
    assert (await client.get(path, params={"limit": maximum}, headers=OP)).status_code == 200
    assert (await client.get(path, params={"limit": maximum + 1}, headers=OP)).status_code == 422
    assert (await client.get(path, params={"limit": 0}, headers=OP)).status_code == 422
