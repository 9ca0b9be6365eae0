"""The transparency log against real PostgreSQL and a real broker: announcements published (by
award events through notify's consumer), withdrawn (a revocation) and finalized (the finaliser)
are each one leaf, densely numbered, once per event, in the transaction of the change; the stored
complete subtrees are exactly those of the entries, and the endpoints' checkpoint and proofs
are what the domain computes over the entries; bad ranges are 422s naming the field; and
`grantline-verify-notice` passes on an honest log that grew between runs but catches a changed
amount, a tampered entry, a wrong pinned key and a forked (rewritten and re-signed) log."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.app import create_app
from services.notify.deps import NotifyContext
from services.notify.transparency import domain
from services.notify.transparency.domain import Change, Checkpoint, Verifier
from services.notify.transparency.handlers import append_changes
from services.notify.transparency.repository import SqlTransparencyRepository
from shared.config.settings import Settings
from shared.contracts.envelope import Event
from shared.contracts.topics import AWARDS
from tests.support.apps import running
from tests.support.kafka import publish
from tests.support.notify import decided, register_partner, revoked
from tests.support.transparency import leaves, nodes_of, rewrite_history, stored_nodes, verify_notice
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def notify_settings(settings: Settings) -> Settings:
    # A long notice (tests end it by hand) and slow retries: the callbacks go nowhere.
    return settings.model_copy(update={"allow_private_callbacks": True, "webhook_backoff_seconds": 600.0,
                                       "notice_period_seconds": 3600, "deployment": "it"})


@pytest.fixture(scope="module")
async def notify_app(notify_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(notify_settings, webhook_timeout=1.0)
    async with running(app) as client:
        yield client, app


@pytest.fixture
def notify(notify_app: tuple[httpx.AsyncClient, FastAPI]) -> httpx.AsyncClient:
    return notify_app[0]


@pytest.fixture(scope="module")
async def partner(notify_app: tuple[httpx.AsyncClient, FastAPI], producer: AIOKafkaProducer,
                  notify_settings: Settings, notify_db: AsyncEngine) -> str:
    return await register_partner(producer, notify_settings, notify_db, "http://127.0.0.1:9/hook")


async def listing(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/announcements", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def announce(client: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, partner: str,
                   n: int, awarded: str = "400000.00") -> list[tuple[Event, dict[str, Any]]]:
    """n decisions through the broker and notify's consumer, once each is listed with its log index."""
    events = [decided(partner, awarded=awarded) for _ in range(n)]
    for event, key in events:
        await publish(producer, settings, AWARDS, event, key)
    subjects = {e.data["subject"]: e for e, _ in events}

    async def listed() -> list[tuple[Event, dict[str, Any]]]:
        found = [(subjects[a["subject"]], a) for a in await listing(client)
                 if a["subject"] in subjects and a["log_index"] is not None]
        return found if len(found) == n else []

    return list(await eventually(listed, what=f"{n} announcements listed with their log_index"))


async def log_size(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/transparency/checkpoint")
    return Checkpoint.parse(response.text.split("\n\n")[0] + "\n").size


async def pinned_key(client: httpx.AsyncClient) -> str:
    response = await client.get("/v1/transparency/key")
    assert response.status_code == 200
    return response.text.strip()


# --- appends -------------------------------------------------------------------------------------


async def test_published_withdrawn_and_finalized_announcements_are_logged_once_each(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    notify_db: AsyncEngine,
) -> None:
    announced = await announce(notify, producer, notify_settings, partner, 3)
    (kept, _), (gone, gone_item), (_, final_item) = announced
    rows = {row.event_id: row for row in await leaves(notify_db)}
    async with notify_db.connect() as conn:
        events = dict((await conn.execute(text(
            "SELECT id, published_event_id::text FROM announcements WHERE id = ANY(:ids)"),
            {"ids": [a["id"] for _, a in announced]})).all())
    for _, item in announced:
        leaf = rows[events[item["id"]]]
        assert (leaf.index, leaf.kind, leaf.announcement_id) == (item["log_index"], "published", item["id"])
        entry = orjson.loads(leaf.entry)
        assert entry == {**{k: item[k] for k in domain.ANNOUNCEMENT_FIELDS}, "event_id": events[item["id"]],
                         "type": "published"}
        assert leaf.leaf_hash == domain.leaf_hash(leaf.entry)

    # A revocation withdraws one: its own leaf, with the revocation's event id.
    revocation = revoked(gone)
    await publish(producer, notify_settings, AWARDS, revocation, gone.data["applicant"]["id"])

    async def withdrawn() -> list[Any]:
        return [r for r in await leaves(notify_db) if r.announcement_id == gone_item["id"] and r.kind == "withdrawn"]

    (leaf,) = await eventually(withdrawn, what="the withdrawal logged")
    entry = orjson.loads(leaf.entry)
    assert entry["event_id"] == str(revocation.id) and entry["type"] == "withdrawn" and entry["withdrawn_at"]
    assert entry["amount"] == gone_item["amount"]

    # The finaliser ends one notice: its leaf carries the finalisation's event and time.
    async with notify_db.begin() as conn:
        await conn.execute(text("UPDATE announcements SET notice_ends_at = published_at WHERE id = :id"),
                           {"id": final_item["id"]})

    async def finalized() -> list[Any]:
        return [r for r in await leaves(notify_db) if r.announcement_id == final_item["id"] and r.kind == "finalized"]

    (leaf,) = await eventually(finalized, what="the finalisation logged")
    served = next(a for a in await listing(notify) if a["id"] == final_item["id"])
    entry = orjson.loads(leaf.entry)
    assert entry["finalized_at"] == served["finalized_at"] is not None and entry["type"] == "finalized"

    # Redelivered events log nothing twice; indices stay dense 0..n-1.
    before = await leaves(notify_db)
    await publish(producer, notify_settings, AWARDS, kept, kept.data["applicant"]["id"])
    await publish(producer, notify_settings, AWARDS, revocation, gone.data["applicant"]["id"])
    await announce(notify, producer, notify_settings, partner, 1)  # a marker: the redeliveries were handled
    after = await leaves(notify_db)
    assert [r.index for r in after] == list(range(len(after)))
    assert len(after) == len(before) + 1 and after[-1].kind == "published"
    assert len({r.event_id for r in after}) == len(after)


async def test_every_announcement_listed_is_in_the_log(notify: httpx.AsyncClient, notify_db: AsyncEngine) -> None:
    """The append is in the announcement's transaction: no announcement without its leaf."""
    async with notify_db.connect() as conn:
        unlogged = (await conn.execute(text(
            "SELECT a.id FROM announcements a LEFT JOIN transparency_leaves l ON l.announcement_id = a.id "
            "AND l.kind = 'published' WHERE l.index IS NULL"))).all()
        unlogged_final = (await conn.execute(text(
            "SELECT a.id FROM announcements a WHERE a.finalized_at IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM transparency_leaves l WHERE l.event_id = a.finalized_event_id)"))).all()
    assert unlogged == [] and unlogged_final == []
    assert all(a["log_index"] is not None for a in await listing(notify))


async def test_concurrent_appends_keep_indices_dense_and_each_event_once(
    notify_app: tuple[httpx.AsyncClient, FastAPI], notify_db: AsyncEngine,
) -> None:
    """Eight transactions append at once (each the same two changes, as redeliveries would, and
    one of its own): the advisory lock serializes them into one dense run, one leaf per event."""
    ctx: NotifyContext = notify_app[1].state.ctx
    async with notify_db.begin() as conn:
        apps, ids = [], set()
        for _ in range(10):
            app = "app_c" + secrets.token_hex(8)
            event = secrets.token_hex(16)
            await conn.execute(text(
                "INSERT INTO announcements (id, application_id, decided_event_id, correlation_id, partner_id, "
                "applicant_id, applicant_name, program, year, subject, amount_fen, published_at, notice_ends_at, "
                "published_event_id) VALUES (:id, :app, gen_random_uuid(), 'c', 'ptn_c', 'x', '某公司', 'GT-EQUITY', "
                "2024, :app, 100, now(), now() + interval '1 hour', CAST(:e AS uuid))"),
                {"id": "ann_" + event, "app": app, "e": event})
            apps.append(app)
            ids.add("ann_" + event)
    before = len(await leaves(notify_db))

    async def append(own: str) -> None:
        async with ctx.unit_of_work() as session:
            await append_changes(SqlTransparencyRepository(session),
                                 [Change("published", apps[0]), Change("published", apps[1]),
                                  Change("published", own)])
            await asyncio.sleep(0.01)  # hold the lock a moment: the others queue behind it

    await asyncio.gather(*(append(own) for own in apps[2:]))
    after = await leaves(notify_db)
    assert [r.index for r in after] == list(range(len(after)))
    assert len(after) == before + 10
    assert {r.announcement_id for r in after[before:]} == ids
    assert len({r.event_id for r in after}) == len(after)
    assert await stored_nodes(notify_db) == nodes_of([r.leaf_hash for r in after])


# --- reads ---------------------------------------------------------------------------------------


async def test_stored_nodes_checkpoint_and_proofs_equal_the_domain_over_the_entries(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    notify_db: AsyncEngine,
) -> None:
    await announce(notify, producer, notify_settings, partner, 5)
    note = (await notify.get("/v1/transparency/checkpoint"))
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    key = await pinned_key(notify)
    assert key.startswith("grantline.notify/it+")
    checkpoint = Checkpoint.parse(Verifier.parse(key).open(note.text))
    size = checkpoint.size
    assert checkpoint.origin == "grantline.notify/it" and size >= 15

    got = (await notify.get("/v1/transparency/entries", params={"start": 0, "end": size + 50})).json()["entries"]
    assert [e["index"] for e in got] == list(range(size))
    raw = [base64.b64decode(e["entry"]) for e in got]
    assert raw == [r.entry for r in await leaves(notify_db)]
    expected = nodes_of([domain.leaf_hash(e) for e in raw])
    assert await stored_nodes(notify_db) == expected  # exactly the complete subtrees, nothing else
    assert checkpoint.root == domain.root(size, expected)

    for m in range(1, size + 1):
        for index in range(m):
            proof = (await notify.get("/v1/transparency/proof/inclusion", params={"index": index, "size": m})).json()
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            assert (proof["index"], proof["size"]) == (index, m)
            assert hashes == domain.assemble(domain.inclusion_ranges(index, m), expected)
            assert domain.verify_inclusion(index, m, domain.leaf_hash(raw[index]), hashes, domain.root(m, expected))
        proof = (await notify.get("/v1/transparency/proof/consistency", params={"from": m, "to": size})).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert (proof["from"], proof["to"]) == (m, size)
        assert domain.verify_consistency(m, size, domain.root(m, expected), checkpoint.root, hashes)

    one = (await notify.get("/v1/transparency/entries", params={"start": 3, "end": 3})).json()["entries"]
    assert [e["index"] for e in one] == [3]


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/transparency/entries", {"start": 10**6, "end": 10**6}, "start"),
    ("/v1/transparency/entries", {"start": 3, "end": 2}, "end"),
    ("/v1/transparency/entries", {"start": -1, "end": 2}, "start"),
    ("/v1/transparency/proof/inclusion", {"index": 5, "size": 5}, "index"),
    ("/v1/transparency/proof/inclusion", {"index": 0, "size": 10**6}, "size"),
    ("/v1/transparency/proof/inclusion", {"index": 0, "size": 0}, "size"),
    ("/v1/transparency/proof/consistency", {"from": 4, "to": 3}, "from"),
    ("/v1/transparency/proof/consistency", {"from": 1, "to": 10**6}, "to"),
    ("/v1/transparency/proof/consistency", {"from": 0, "to": 3}, "from"),
    ("/v1/transparency/proof/consistency", {"from": 1, "to": 2**80}, "to"),
])
async def test_bad_ranges_are_422_naming_the_field(notify: httpx.AsyncClient, path: str, params: dict[str, int],
                                                   field: str) -> None:
    response = await notify.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


# --- the verify script ---------------------------------------------------------------------------


async def test_verify_passes_on_an_honest_log_that_grows_between_runs(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    tmp_path: Path,
) -> None:
    key, state = await pinned_key(notify), tmp_path / "state"
    state.mkdir()
    (_, first), = await announce(notify, producer, notify_settings, partner, 1)
    run = await verify_notice(notify, key, state, "--announcement", first["id"])
    assert run.code == 0, run.err
    assert "no checkpoint was saved before" in run.out and first["id"] in run.out
    saved = await log_size(notify)
    assert f"\n{saved}\n" in (state / "checkpoint").read_text()

    (_, second), = await announce(notify, producer, notify_settings, partner, 1)
    run = await verify_notice(notify, key, state, "--announcement", second["id"])
    assert run.code == 0, run.err
    assert f"extends the checkpoint saved at size {saved}" in run.out
    run = await verify_notice(notify, key, state, "--index", str(first["log_index"]))
    assert run.code == 0, run.err


async def test_verify_catches_an_amount_changed_in_the_database(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    notify_db: AsyncEngine, tmp_path: Path,
) -> None:
    key, state = await pinned_key(notify), tmp_path / "checkpoint"
    (_, item), = await announce(notify, producer, notify_settings, partner, 1, awarded="123456.78")
    assert (await verify_notice(notify, key, state, "--announcement", item["id"])).code == 0
    async with notify_db.begin() as conn:
        await conn.execute(text("UPDATE announcements SET amount_fen = amount_fen + 1 WHERE id = :id"),
                           {"id": item["id"]})
    try:
        run = await verify_notice(notify, key, state, "--announcement", item["id"])
        assert run.code == 1
        assert "amount served '123456.79' but logged '123456.78'" in run.err, run.err
    finally:
        async with notify_db.begin() as conn:
            await conn.execute(text("UPDATE announcements SET amount_fen = amount_fen - 1 WHERE id = :id"),
                               {"id": item["id"]})
    assert (await verify_notice(notify, key, state, "--announcement", item["id"])).code == 0


async def test_verify_catches_a_tampered_entry(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    notify_db: AsyncEngine, tmp_path: Path,
) -> None:
    """An entry and its announcement changed together in the database (so the two still agree):
    the entry is inside a stored complete subtree, so the signed root no longer includes it, for
    a citizen with a saved checkpoint and for one without."""
    key, state = await pinned_key(notify), tmp_path / "checkpoint"
    announced = await announce(notify, producer, notify_settings, partner, 2, awarded="500000.00")
    item = min((a for _, a in announced), key=lambda a: a["log_index"])  # its sibling leaf is logged too
    index = item["log_index"]
    assert (await verify_notice(notify, key, state, "--announcement", item["id"])).code == 0
    async with notify_db.begin() as conn:
        original = bytes((await conn.execute(text("SELECT entry FROM transparency_leaves WHERE index = :i"),
                                             {"i": index})).scalar_one())
        forged = original.replace(b'"amount":"500000.00"', b'"amount":"900000.00"')
        assert forged != original
        await conn.execute(text("UPDATE transparency_leaves SET entry = :e, leaf_hash = :h WHERE index = :i"),
                           {"e": forged, "h": domain.leaf_hash(forged), "i": index})
        await conn.execute(text("UPDATE announcements SET amount_fen = 90000000 WHERE id = :id"), {"id": item["id"]})
    try:
        for where in (state, tmp_path / "fresh"):
            run = await verify_notice(notify, key, where, "--announcement", item["id"])
            assert run.code == 1, run.out
            assert f"entry {index} as served is not the one in the signed log" in run.err, run.err
    finally:
        async with notify_db.begin() as conn:
            await conn.execute(text("UPDATE transparency_leaves SET entry = :e, leaf_hash = :h WHERE index = :i"),
                               {"e": original, "h": domain.leaf_hash(original), "i": index})
            await conn.execute(text("UPDATE announcements SET amount_fen = 50000000 WHERE id = :id"),
                               {"id": item["id"]})
    assert (await verify_notice(notify, key, state, "--announcement", item["id"])).code == 0


async def test_verify_refuses_a_checkpoint_not_signed_by_the_pinned_key(
    notify: httpx.AsyncClient, tmp_path: Path,
) -> None:
    other = domain.Signer.from_seed("grantline.notify/it", bytes(32)).verifier_key()
    run = await verify_notice(notify, other, tmp_path / "checkpoint")
    assert run.code == 1
    assert "carries no signature by the pinned key" in run.err, run.err
    assert not (tmp_path / "checkpoint").exists()  # nothing accepted, nothing saved
    run = await verify_notice(notify, "not a key", tmp_path / "checkpoint")
    assert run.code == 1 and "the pinned key is not usable" in run.err


async def test_verify_catches_a_forked_log(
    notify: httpx.AsyncClient, producer: AIOKafkaProducer, notify_settings: Settings, partner: str,
    notify_db: AsyncEngine, tmp_path: Path,
) -> None:
    """An insider rewrites an old entry and recomputes every stored hash (the log is
    self-consistent again and the service signs it): the next checkpoint, larger, does not
    extend the one the citizen saved."""
    key, state = await pinned_key(notify), tmp_path / "checkpoint"
    (_, item), = await announce(notify, producer, notify_settings, partner, 1)
    assert (await verify_notice(notify, key, state)).code == 0
    saved = await log_size(notify)
    index = item["log_index"]
    logged = (await leaves(notify_db))[index]
    forged = logged.entry.replace(b'"amount":"', b'"amount":"1')
    original = await rewrite_history(notify_db, {index: forged})
    try:
        await announce(notify, producer, notify_settings, partner, 1)  # the log grows past the saved size
        run = await verify_notice(notify, key, state)
        assert run.code == 1
        assert f"is not consistent with the one saved at size {saved}" in run.err, run.err
        # A citizen with no saved checkpoint is not fooled either about the entry itself:
        # the listing still shows the old amount while the log now says otherwise.
        run = await verify_notice(notify, key, tmp_path / "fresh", "--announcement", item["id"])
        assert run.code == 1 and f"differs from its logged entry {index}: amount" in run.err, run.err
    finally:
        await rewrite_history(notify_db, original)
    assert (await verify_notice(notify, key, state, "--announcement", item["id"])).code == 0
