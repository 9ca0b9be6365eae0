"""The transparency log as a test reads and attacks it: its rows, the nodes it should have stored,
an insider's rewrite of its history (entries changed and every node recomputed, as someone with
the database password would do it to get a consistent-looking forked log), and the verify
script run in process."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.transparency import domain
from services.notify.transparency.verify import amain


@dataclass(frozen=True)
class Leaf:
    index: int
    entry: bytes
    leaf_hash: bytes
    announcement_id: str
    kind: str
    event_id: str


async def leaves(engine: AsyncEngine) -> list[Leaf]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT index, entry, leaf_hash, announcement_id, kind, event_id::text FROM transparency_leaves "
            "ORDER BY index"
        ))).all()
    return [Leaf(int(r[0]), bytes(r[1]), bytes(r[2]), r[3], r[4], r[5]) for r in rows]


async def stored_nodes(engine: AsyncEngine) -> dict[domain.Node, bytes]:
    """Every hash the log stores: its leaves' (level 0) and its complete subtrees'."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT 0, index, leaf_hash FROM transparency_leaves UNION ALL "
            "SELECT level, index, hash FROM transparency_nodes"
        ))).all()
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


def nodes_of(leaf_hashes: Sequence[bytes]) -> dict[domain.Node, bytes]:
    """The nodes a log of these leaves should store, computed in memory."""
    nodes: dict[domain.Node, bytes] = {(0, i): h for i, h in enumerate(leaf_hashes)}
    for made in domain.appended_nodes(0, [], leaf_hashes):
        nodes[(made.level, made.index)] = made.hash
    return nodes


async def rewrite_history(engine: AsyncEngine, replaced: dict[int, bytes]) -> dict[int, bytes]:
    """As an insider with the superuser's password: replace entries and recompute every stored
    node so the log is self-consistent again. Returns the entries replaced (to put them back)."""
    async with engine.begin() as conn:
        old = {int(i): bytes(e) for i, e in (await conn.execute(
            text("SELECT index, entry FROM transparency_leaves WHERE index = ANY(:i)"), {"i": list(replaced)}
        )).all()}
        for index, entry in replaced.items():
            await conn.execute(text("UPDATE transparency_leaves SET entry = :e, leaf_hash = :h WHERE index = :i"),
                               {"e": entry, "h": domain.leaf_hash(entry), "i": index})
        hashes = [bytes(h) for (h,) in (await conn.execute(
            text("SELECT leaf_hash FROM transparency_leaves ORDER BY index"))).all()]
        await conn.execute(text("DELETE FROM transparency_nodes"))
        made = domain.appended_nodes(0, [], hashes)
        if made:
            await conn.execute(
                text("INSERT INTO transparency_nodes (level, index, hash) "
                     "SELECT * FROM unnest(CAST(:l AS int[]), CAST(:i AS bigint[]), CAST(:h AS bytea[]))"),
                {"l": [n.level for n in made], "i": [n.index for n in made], "h": [n.hash for n in made]},
            )
    return old


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


async def verify_notice(client: httpx.AsyncClient, key: str, state: Path, *args: str) -> Run:
    """`grantline-verify-notice` against an in-process app (its ASGI transport), with the key
    pinned in a file next to the state."""
    key_file = state.parent / "pinned.key"
    key_file.write_text(key + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    transport = client._transport  # the app's ASGITransport (tests.support.apps.running)
    assert isinstance(transport, httpx.AsyncBaseTransport)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = await amain([str(client.base_url), "--key", str(key_file), "--state", str(state), *args],
                           transport=_Unclosed(transport))
    return Run(code, out.getvalue(), err.getvalue())


class _Unclosed(httpx.AsyncBaseTransport):
    """The app's transport lent to the script, whose client closes it when done."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass
