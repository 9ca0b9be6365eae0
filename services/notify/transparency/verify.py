"""`grantline-verify-notice`: what a citizen, a journalist or an auditor runs to check the 公示
against its transparency log, trusting nothing but a key they pinned once.

    grantline-verify-notice http://127.0.0.1:8004 --key key.txt --state ~/.grantline-notice \\
        [--announcement ann_…] [--index N]

1. fetches the log's checkpoint and checks its Ed25519 signature against the pinned verifier key
   (`--key`: the key itself, or a file holding it, as GET /v1/transparency/key gave it once);
2. checks that it extends the checkpoint accepted last time (`--state`, a file or a directory):
   same origin, not smaller, and an RFC 9162 consistency proof from the old size to the new;
3. with `--announcement` (and/or `--index`): fetches the announcement's entry and its inclusion
   proof at the new size, and checks that the entry is the announcement as /v1/announcements
   serves it now, field by field (so an amount changed in the database fails);
4. saves the new checkpoint, and prints one line saying what it checked.

Exit 0 when everything holds; 1 with one sentence saying what failed; 2 for a usage error. It
needs no database: only the service's public routes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.notify.transparency.domain import (
    ANNOUNCEMENT_FIELDS,
    Checkpoint,
    Verifier,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

STATE_FILE = "checkpoint"  # inside --state when it is a directory
LISTING_PAGE = 1000


class Failed(Exception):
    """A check failed: the message is the one sentence printed."""


@dataclass(frozen=True)
class Outcome:
    checkpoint: Checkpoint
    previous: Checkpoint | None
    announcement: str | None = None
    index: int | None = None
    kind: str | None = None

    def summary(self) -> str:
        cp = self.checkpoint
        parts = [f"ok: {cp.origin} checkpoint at size {cp.size} (root {base64.b64encode(cp.root).decode()}) "
                 "is signed by the pinned key"]
        if self.previous is None:
            parts.append("no checkpoint was saved before: this one is now pinned")
        else:
            parts.append(f"it extends the checkpoint saved at size {self.previous.size}")
        if self.announcement is not None:
            parts.append(f"announcement {self.announcement} is entry {self.index} ({self.kind}) of the log "
                         "and is served exactly as logged")
        return "; ".join(parts) + "."


def load_verifier(value: str) -> Verifier:
    """`--key`: a verifier key, or a file holding one."""
    path = Path(value)
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else value
    try:
        return Verifier.parse(text)
    except ValueError as exc:
        raise Failed(f"the pinned key is not usable: {exc}") from None


def state_path(value: str) -> Path:
    path = Path(value)
    return path / STATE_FILE if path.is_dir() or value.endswith(os.sep) else path


def read_state(state: Path) -> str | None:
    return state.read_text(encoding="utf-8") if state.is_file() else None


def save_state(state: Path, note: str) -> None:
    """Replaced whole (write, then rename): an interrupted run leaves the old checkpoint."""
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(note, encoding="utf-8")
    tmp.replace(state)


def _open_checkpoint(verifier: Verifier, note: str, what: str) -> Checkpoint:
    try:
        checkpoint = Checkpoint.parse(verifier.open(note))
    except ValueError as exc:
        raise Failed(f"{what}: {exc}") from None
    if checkpoint.origin != verifier.name:
        raise Failed(f"{what} is for the log {checkpoint.origin!r}, not {verifier.name!r} of the pinned key")
    return checkpoint


async def _get(client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise Failed(f"could not reach {client.base_url}{path}: {exc}") from None
    if response.status_code != 200:
        raise Failed(f"{path} answered {response.status_code}: {response.text[:200]}")
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise Failed(f"{response.url.path} did not answer JSON") from None


def _hashes(body: Any, what: str) -> list[bytes]:
    try:
        hashes = [base64.b64decode(h, validate=True) for h in body["hashes"]]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise Failed(f"the {what} proof is malformed") from None
    if any(len(h) != 32 for h in hashes):
        raise Failed(f"the {what} proof is malformed (a hash is not 32 bytes)")
    return hashes


async def _entry(client: httpx.AsyncClient, index: int) -> bytes:
    body = _json(await _get(client, "/v1/transparency/entries", {"start": index, "end": index}))
    try:
        (item,) = [e for e in body["entries"] if e["index"] == index]
        return base64.b64decode(item["entry"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise Failed(f"the log did not answer entry {index}") from None


async def _served(client: httpx.AsyncClient, announcement_id: str) -> dict[str, Any] | None:
    """The announcement as /v1/announcements serves it now (None: not on the notice)."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": LISTING_PAGE}
        if cursor:
            params["cursor"] = cursor
        page = _json(await _get(client, "/v1/announcements", params))
        for item in page.get("items", []):
            if item.get("id") == announcement_id:
                return dict(item)
        cursor = page.get("next_cursor")
        if not cursor:
            return None


async def check(
    client: httpx.AsyncClient, verifier: Verifier, state: Path, *, announcement: str | None = None,
    index: int | None = None,
) -> Outcome:
    """Every check; raises Failed with the reason. Saves the new checkpoint only when all hold."""
    note = (await _get(client, "/v1/transparency/checkpoint")).text
    checkpoint = _open_checkpoint(verifier, note, "the log's checkpoint")

    previous: Checkpoint | None = None
    saved = read_state(state)
    if saved is not None:
        previous = _open_checkpoint(verifier, saved, f"the checkpoint saved in {state}")
        if checkpoint.size < previous.size:
            raise Failed(f"the log shrank: it is at size {checkpoint.size}, but size {previous.size} was seen before")
        if previous.size and checkpoint.size > previous.size:
            body = _json(await _get(client, "/v1/transparency/proof/consistency",
                                    {"from": previous.size, "to": checkpoint.size}))
            proof = _hashes(body, "consistency")
        else:
            proof = []
        if not verify_consistency(previous.size, checkpoint.size, previous.root, checkpoint.root, proof):
            raise Failed(f"the log was rewritten: its checkpoint at size {checkpoint.size} is not consistent "
                         f"with the one saved at size {previous.size}")

    outcome = Outcome(checkpoint, previous)
    if announcement is not None or index is not None:
        outcome = await _check_announcement(client, checkpoint, outcome, announcement, index)

    save_state(state, note)
    return outcome


async def _check_announcement(
    client: httpx.AsyncClient, checkpoint: Checkpoint, outcome: Outcome, announcement: str | None,
    index: int | None,
) -> Outcome:
    served = await _served(client, announcement) if announcement is not None else None
    if announcement is not None and index is None:
        if served is None:
            raise Failed(f"announcement {announcement} is not on the public notice (/v1/announcements)")
        if served.get("log_index") is None:
            raise Failed(f"announcement {announcement} carries no log_index: it is not in the log")
        index = int(served["log_index"])
    assert index is not None
    if index >= checkpoint.size:
        raise Failed(f"entry {index} is beyond the log's checkpoint (size {checkpoint.size})")

    raw = await _entry(client, index)
    body = _json(await _get(client, "/v1/transparency/proof/inclusion", {"index": index, "size": checkpoint.size}))
    if not verify_inclusion(index, checkpoint.size, leaf_hash(raw), _hashes(body, "inclusion"), checkpoint.root):
        raise Failed(f"entry {index} as served is not the one in the signed log (its inclusion proof fails)")
    try:
        entry = orjson.loads(raw)
        logged_id, kind = str(entry["id"]), str(entry["type"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise Failed(f"entry {index} is not an announcement entry") from None
    if announcement is not None and logged_id != announcement:
        raise Failed(f"entry {index} is of announcement {logged_id}, not {announcement}")
    if served is None and announcement is None:
        served = await _served(client, logged_id)

    if kind == "withdrawn":
        if served is not None:
            raise Failed(f"announcement {logged_id} was logged as withdrawn but is still on the public notice")
    else:
        if served is None:
            raise Failed(f"announcement {logged_id} is in the log but not on the public notice (/v1/announcements)")
        fields = [*ANNOUNCEMENT_FIELDS, "finalized_at"] if kind == "finalized" else list(ANNOUNCEMENT_FIELDS)
        differ = [f for f in fields if entry.get(f) != served.get(f)]
        if differ:
            said = ", ".join(f"{f} served {served.get(f)!r} but logged {entry.get(f)!r}" for f in differ)
            raise Failed(f"announcement {logged_id} as served differs from its logged entry {index}: {said}")
        if kind == "published" and served.get("log_index") != index:
            raise Failed(f"announcement {logged_id} says log_index {served.get('log_index')}, but its published "
                         f"entry is {index}")
    return Outcome(outcome.checkpoint, outcome.previous, logged_id, index, kind)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grantline-verify-notice",
        description="Check Grantline's public notice (公示) against its signed transparency log.",
    )
    p.add_argument("url", help="notify's base URL, e.g. http://127.0.0.1:8004")
    p.add_argument("--key", required=True,
                   help="the pinned verifier key (as GET /v1/transparency/key gave it), or a file holding it")
    p.add_argument("--state", required=True,
                   help="file (or directory) keeping the last checkpoint accepted; created on the first run")
    p.add_argument("--announcement", help="an announcement id (ann_…) to check against the log")
    p.add_argument("--index", type=int, help="a log entry index to check (with or instead of --announcement)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    return p


async def amain(argv: Sequence[str] | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """The script, awaitable (tests pass an in-process transport)."""
    args = parser().parse_args(argv)
    if args.index is not None and args.index < 0:
        print("grantline-verify-notice: --index must not be negative", file=sys.stderr)
        return 2
    print(f"grantline-verify-notice: checking {args.url}", file=sys.stderr)
    try:
        verifier = load_verifier(args.key)
        async with httpx.AsyncClient(base_url=args.url, timeout=args.timeout, transport=transport,
                                     follow_redirects=False) as client:
            outcome = await check(client, verifier, state_path(args.state), announcement=args.announcement,
                                  index=args.index)
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"FAILED: {exc.strerror or exc} ({exc.filename or args.state})", file=sys.stderr)
        return 1
    print(outcome.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(amain(argv))


if __name__ == "__main__":
    sys.exit(main())
