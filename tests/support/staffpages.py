"""Signing in to the services' staff pages (the ledger's dashboard, notify's objections page) over
HTTP, as a browser does: the sign-in form, then the page's CSRF token."""

from __future__ import annotations

import re

import httpx


def csrf_of(html: str) -> str:
    """The CSRF token a staff page's forms carry."""
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "the page carries the session's CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, login: str, page: str, token: str) -> str:
    """Signed in at `login` with `token` (sent on to `page`): the page's CSRF token."""
    resp = await client.post(login, data={"token": token})
    assert resp.status_code == 303 and resp.headers["location"] == page, resp.text
    return csrf_of((await client.get(page)).text)
