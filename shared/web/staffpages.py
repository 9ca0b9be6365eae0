"""What the services' staff pages share (the ledger's dashboard, notify's objections page): one
look, and the edge of signing in: the session a request's cookie carries, who it names as of
now, the form a page posts, and whether the post came from the page itself.

A page declares its `StaffSignIn` (its cookie, the path the cookie is sent to, its signing label)
and decides itself which roles get in and what each may do; the sessions are
shared.web.sessions'.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from typing import Literal
from urllib.parse import parse_qs

from fastapi import Request, Response

from shared.config.settings import Settings
from shared.web.auth import Principal, principal_for_identity
from shared.web.sessions import (
    SESSION_SECONDS,
    StaffSession,
    csrf_ok,
    issue_session,
    read_session,
    same_origin,
    signing_key,
)

FORM_FIELDS_MAX = 20

STAFF_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 1.5rem; color: #1a1a1a; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
header { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
nav.pages { display: flex; gap: 1rem; font-size: .9rem; margin: 0 0 .8rem; } nav.pages a[aria-current] { font-weight: 600; color: inherit; text-decoration: none; }
table { border-collapse: collapse; width: 100%; margin-top: .5rem; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; } td.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { background: #e8eef5; width: 10rem; height: .8rem; border-radius: .2rem; overflow: hidden; display: inline-block; vertical-align: middle; }
.bar > span { display: block; height: 100%; background: #2e7d32; }
.bar.warn > span { background: #ef8f00; } .bar.full > span { background: #c62828; }
.notice { background: #e8f5e9; border: 1px solid #a5d6a7; padding: .5rem .8rem; }
.error { background: #ffebee; border: 1px solid #ef9a9a; padding: .5rem .8rem; }
form.filters { display: flex; gap: .8rem; align-items: end; flex-wrap: wrap; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; }
form.revoke { display: flex; gap: .3rem; } form.revoke input[name=reason] { width: 12rem; }
form.review { display: flex; gap: .3rem; margin: .15rem 0; } form.review input[name=reason] { width: 10rem; }
form.review input[name=amount] { width: 8rem; text-align: right; }
td.rules ul, td.pools ul { margin: 0; padding-left: 1rem; } td.rules li.failed { color: #c62828; }
cite { color: #555; font-style: normal; font-size: .8rem; } .who { color: #555; font-size: .85rem; }
tr.fresh { animation: fresh 2s ease-out; } @keyframes fresh { from { background: #fff59d; } to { background: transparent; } }
small.id { color: #666; display: block; font-size: .75rem; }
#live { font-size: .85rem; color: #666; }
"""
"""The staff pages' style sheet (inline: their CSP admits inline style and nothing else to load)."""


StaffPage = Literal["ledger", "objections"]


def staff_nav(settings: Settings, current: StaffPage) -> str:
    """The staff pages' navigation (HTML): each page at the public URL of the service serving it."""
    pages = (
        ("ledger", settings.ledger_public_url.rstrip("/") + "/dashboard", "Ledger 资金台账"),
        ("objections", settings.notify_public_url.rstrip("/") + "/staff/objections", "Objections 异议"),
    )
    here = ' aria-current="page"'
    links = "".join(
        f'<a href="{escape(url, quote=True)}" id="nav-{page}"{here if page == current else ""}>{escape(label)}</a>'
        for page, url, label in pages
    )
    return f'<nav class="pages">{links}</nav>'


@dataclass(frozen=True)
class StaffSignIn:
    """One page's sessions: the cookie `cookie_name`, sent only under `path`, signed with a key
    derived from the operator token and `label`."""

    cookie_name: str
    path: str
    label: bytes

    def key(self, request: Request) -> bytes:
        return signing_key(request.app.state.ctx.settings.operator_token, self.label)

    def session(self, request: Request) -> StaffSession | None:
        """The session the request's cookie carries, if it is genuine and current."""
        return read_session(self.key(request), request.cookies.get(self.cookie_name), time.time())

    async def signed_in(self, request: Request) -> tuple[StaffSession, Principal] | None:
        """The session and who it names as of now (a deactivated staff member is nobody any more)."""
        session = self.session(request)
        if session is None:
            return None
        principal = await principal_for_identity(request.app, session.who)
        return None if principal is None else (session, principal)

    def start(self, request: Request, response: Response, who: str) -> None:
        """Sign `who` in: a new session in an HttpOnly, SameSite=Strict cookie (Secure over https)."""
        value, _ = issue_session(self.key(request), time.time(), who)
        response.set_cookie(self.cookie_name, value, max_age=SESSION_SECONDS, path=self.path, httponly=True,
                            samesite="strict", secure=is_https(request))

    def end(self, request: Request, response: Response) -> None:
        response.delete_cookie(self.cookie_name, path=self.path, httponly=True, samesite="strict",
                               secure=is_https(request))

    def form_ok(self, request: Request, session: StaffSession, form: dict[str, str]) -> bool:
        """Whether a posted form was sent from this page: the session's CSRF token in it, and a
        same-origin request when the browser says where it came from."""
        return csrf_ok(self.key(request), session, form.get("csrf")) and sent_from_here(request)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def sent_from_here(request: Request) -> bool:
    return same_origin(request.headers.get("sec-fetch-site"), request.headers.get("origin"),
                       request.headers.get("host", ""))


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each); none from a body that is not a form or
    has more than FORM_FIELDS_MAX fields."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    raw = await request.body()
    try:
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX)
    except ValueError:
        return {}
    return {k: v[0] for k, v in parsed.items()}
