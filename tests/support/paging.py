"""Reading a cursor-paginated list (`{"items", "next_cursor"}`) to its end, a page at a time."""

from __future__ import annotations

from typing import Any

import httpx


async def read_pages(
    client: httpx.AsyncClient, path: str, limit: int, headers: dict[str, str], **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of `path` under `params`, in order (a bounded number: a cursor that does not
    advance fails)."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not advance"
