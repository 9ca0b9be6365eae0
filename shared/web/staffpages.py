"""What the services' staff pages share (the ledger's dashboard, notify's objections page): one
look, their links to each other, and signing in: the sign-in and sign-out routes, the session a
request's cookie carries, who it names as of now, the form a page posts, and whether the post came
from the page itself.

A service declares its pages' `StaffSignIn` (the cookie, the path it is sent to, the signing
label, the roles that get in, where signing in leads) and decides itself what each role may do
there; the sessions are shared.web.sessions'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from shared.config.settings import Settings
from shared.kernel.errors import Unauthorized
from shared.web.auth import Principal, Role, principal_for_identity, principal_for_token
from shared.web.edges import FORM_MEDIA, has_body, require_media_type
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
nav.status { display: flex; gap: .8rem; font-size: .9rem; margin-top: .8rem; } nav.status a[aria-current] { font-weight: 600; color: inherit; }
td.statement { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 36rem; vertical-align: top; }
td.objector .private { color: #666; font-size: .8rem; font-style: italic; }
td.status.open { color: #8a5300; } td.status.upheld { color: #c62828; } td.status.dismissed { color: #1b5e20; }
form.resolve { display: flex; gap: .3rem; flex-wrap: wrap; } form.resolve input[name=reason] { width: 14rem; }
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


def staff_headers(content_security_policy: str) -> dict[str, str]:
    """What every response of a staff page carries: its CSP, never framed, sniffed or cached."""
    return {
        "Content-Security-Policy": content_security_policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def staff_document(title: str, body: str, *, head: str = "") -> str:
    """A whole staff page: `title` (escaped here), the style sheet, `head` and `body` (already escaped HTML)."""
    return (
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
        f"<style>{STAFF_STYLE}</style>{head}</head><body>{body}</body></html>"
    )


def who_label(principal: Principal) -> str:
    """Who is signed in, as the pages show it: `name (id) · roles`."""
    name = f"{principal.name} ({principal.id})" if principal.name else principal.id
    return f"{name} · {', '.join(sorted(principal.roles))}"


def login_document(name: str, who_may: str, action: str, error: str | None = None) -> str:
    """The sign-in form of the pages called `name`, which `who_may` (e.g. "reviewers and auditors") sign in to."""
    err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return staff_document(f"{name}: sign in", (
        f"<main><h1>{escape(name)}</h1><p>Staff only: {escape(who_may)}. Sign in "
        "with your staff key (gls_…) or the operator token.</p>"
        f"{err}<form method=\"post\" action=\"{escape(action)}\" id=\"login\">"
        "<label>Staff key or operator token <input type=\"password\" name=\"token\" "
        "autocomplete=\"current-password\" required></label> <button type=\"submit\">Sign in</button></form></main>"
    ))


def message_document(title: str, message: str, back: str, back_label: str) -> str:
    """A page saying why something was not done, with the way back."""
    return staff_document(title, f'<main><h1>{escape(title)}</h1><p class="error">{escape(message)}</p>'
                                 f'<p><a href="{escape(back)}">{escape(back_label)}</a></p></main>')


@dataclass(frozen=True, eq=False)
class StaffSignIn:
    """One service's staff pages and their sessions: the cookie `cookie_name`, sent only under
    `path` (where the sign-in and sign-out forms post: `path`/login, `path`/logout), signed with a
    key derived from the operator token and `label`; `roles` get in; signing in and out lead to
    `home`; refusals are the pages' own `login_page` and `message_page`, with their `headers`."""

    cookie_name: str
    path: str
    label: bytes
    roles: tuple[Role, ...]
    home: str
    login_page: Callable[[str | None], str]
    message_page: Callable[[str, str], str]
    headers: Mapping[str, str]

    def admits(self, principal: Principal) -> bool:
        return not principal.is_partner and not principal.roles.isdisjoint(self.roles)

    def key(self, request: Request) -> bytes:
        return signing_key(request.app.state.ctx.settings.operator_token, self.label)

    def session(self, request: Request) -> StaffSession | None:
        """The session the request's cookie carries, if it is genuine and current."""
        return read_session(self.key(request), request.cookies.get(self.cookie_name), time.time())

    async def signed_in(self, request: Request) -> tuple[StaffSession, Principal] | None:
        """The session and who it names as of now, if they may be here (a deactivated staff
        member is nobody any more)."""
        session = self.session(request)
        if session is None:
            return None
        principal = await principal_for_identity(request.app, session.who)
        return None if principal is None or not self.admits(principal) else (session, principal)

    def form_ok(self, request: Request, session: StaffSession, form: dict[str, str]) -> bool:
        """Whether a posted form was sent from these pages: the session's CSRF token in it, and a
        same-origin request when the browser says where it came from."""
        return csrf_ok(self.key(request), session, form.get("csrf")) and sent_from_here(request)

    async def posted_form(self, request: Request, role: Role, not_done: str) -> tuple[Principal, dict[str, str]] | Response:
        """The form a signed-in principal holding `role` sent from these pages (CSRF-checked), and
        who sent it; or the answer refusing it (401, 403), titled `not_done` ("Not revoked")."""
        signed = await self.signed_in(request)
        if signed is None:
            return self.html(self.login_page("Sign in again: the session ended."), 401)
        session, principal = signed
        form = await read_form(request)
        if not self.form_ok(request, session, form):
            return self.html(self.message_page(not_done, "The form was not sent from these pages "
                                                         "(missing or wrong CSRF token)."), 403)
        if role not in principal.roles:
            return self.html(self.message_page(not_done, f"This needs the {role} role."), 403)
        return principal, form

    def html(self, body: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status_code, headers=dict(self.headers))

    def redirect(self, location: str) -> RedirectResponse:
        return RedirectResponse(location, status_code=303, headers=dict(self.headers))

    def routes(self) -> APIRouter:
        """POST `path`/login (a staff key or a bootstrap token, resolved as every route resolves
        a bearer; 401 for one not accepted, 403 for one holding none of the roles) and POST
        `path`/logout (CSRF-checked while a session is genuine: a deactivated member may still
        sign out)."""
        router = APIRouter(include_in_schema=False)
        router.add_api_route(self.path + "/login", self._login, methods=["POST"])
        router.add_api_route(self.path + "/logout", self._logout, methods=["POST"])
        return router

    async def _login(self, request: Request) -> Response:
        token = (await read_form(request)).get("token", "").strip()
        try:
            principal = await principal_for_token(request.app, token) if token else None
        except Unauthorized:
            principal = None
        if principal is None:
            return self.html(self.login_page("That token was not accepted."), 401)
        if not self.admits(principal):
            return self.html(self.login_page(f"That key holds no role these pages serve ({', '.join(self.roles)})."),
                             403)
        response = self.redirect(self.home)
        value, _ = issue_session(self.key(request), time.time(), principal.id)
        response.set_cookie(self.cookie_name, value, max_age=SESSION_SECONDS, path=self.path, httponly=True,
                            samesite="strict", secure=is_https(request))
        return response

    async def _logout(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None and not self.form_ok(request, session, await read_form(request)):
            return self.html(self.message_page("Not signed out", "The form was not sent from these pages."), 403)
        response = self.redirect(self.home)
        response.delete_cookie(self.cookie_name, path=self.path, httponly=True, samesite="strict",
                               secure=is_https(request))
        return response


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def sent_from_here(request: Request) -> bool:
    return same_origin(request.headers.get("sec-fetch-site"), request.headers.get("origin"),
                       request.headers.get("host", ""))


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each); none from an empty body or one with
    more than FORM_FIELDS_MAX fields; 415 for a body that is not exactly a form (its size is
    bounded while it is read: shared.web.edges)."""
    if not has_body(request.headers):
        return {}
    require_media_type(request, FORM_MEDIA)
    raw = await request.body()
    try:
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX)
    except ValueError:
        return {}
    return {k: v[0] for k, v in parsed.items()}
