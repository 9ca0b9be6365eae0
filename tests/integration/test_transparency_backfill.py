"""Migration 0006 logs the announcements that were published before the log existed: each
publication, withdrawal and finalisation once, in the order they happened, with the entries the
service itself would have appended, and the stored subtrees of exactly those leaves."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from services.notify.transparency.domain import Change, leaf_hash
from services.notify.transparency.handlers import entry_for
from services.notify.transparency.repository import SqlTransparencyRepository
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.migrate import alembic_config
from tests.support.transparency import leaves, nodes_of, stored_nodes

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


async def test_announcements_from_before_the_log_are_logged_in_order(db_url: str) -> None:
    schema = "notify_backfill_" + secrets.token_hex(3)
    await asyncio.to_thread(command.upgrade, alembic_config(db_url, "notify", schema), "0005")
    engine = make_engine(db_url, schema)
    try:
        # a: published then withdrawn; b: published then finalized (after a's withdrawal); c: published.
        rows = {}
        async with engine.begin() as conn:
            for name, published, extra in (
                ("a", T0, {"withdrawn_at": T0 + timedelta(days=1), "withdrawn_event_id": uuid.uuid4()}),
                ("b", T0 + timedelta(hours=1), {"finalized_at": T0 + timedelta(days=2),
                                                "finalized_event_id": uuid.uuid4()}),
                ("c", T0 + timedelta(hours=2), {}),
            ):
                event = uuid.uuid4()
                row = {"id": "ann_" + event.hex, "app": "app_" + name, "pub": published, "e": event,
                       "w": extra.get("withdrawn_at"), "we": extra.get("withdrawn_event_id"),
                       "f": extra.get("finalized_at"), "fe": extra.get("finalized_event_id")}
                await conn.execute(text(
                    "INSERT INTO announcements (id, application_id, decided_event_id, correlation_id, partner_id, "
                    "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
                    "published_event_id, withdrawn_at, withdrawn_event_id, finalized_at, finalized_event_id) VALUES "
                    "(:id, :app, gen_random_uuid(), 'c', 'ptn', 'x', '上海某某公司', 'GT-EQUITY', 2024, :app, 12345, "
                    "CAST(:pub AS timestamptz), CAST(:pub AS timestamptz) + interval '5 days', :e, :w, :we, :f, :fe)"), row)
                rows[name] = row
        await asyncio.to_thread(command.upgrade, alembic_config(db_url, "notify", schema), "head")

        logged = await leaves(engine)
        assert [(r.announcement_id, r.kind) for r in logged] == [
            (rows["a"]["id"], "published"), (rows["b"]["id"], "published"), (rows["c"]["id"], "published"),
            (rows["a"]["id"], "withdrawn"), (rows["b"]["id"], "finalized"),
        ]
        # The very entries the service appends for these changes.
        async with make_sessionmaker(engine)() as session, session.begin():
            repo = SqlTransparencyRepository(session)
            changes = [Change(r.kind, "app_" + next(k for k, v in rows.items() if v["id"] == r.announcement_id))
                       for r in logged]  # type: ignore[arg-type]
            found = {row.application_id: row for row in await repo.changed_announcements(changes)}
            expected = [entry_for(c, found[c.application_id]) for c in changes]
        assert [r.entry for r in logged] == [e.entry for e in expected if e is not None]
        assert [r.leaf_hash for r in logged] == [leaf_hash(r.entry) for r in logged]
        assert await stored_nodes(engine) == nodes_of([r.leaf_hash for r in logged])
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
