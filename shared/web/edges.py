"""What every request meets before a route sees it, for every service (installed by
shared.web.app.create_service_app as one plain ASGI layer, RequestEdge there):

* the body limit, counted while the body is read, chunked or not: the read that crosses
  `body_max_bytes` ends the request with 413 (nothing past the limit is ever held); a route that
  takes larger documents says so with `body_limit(n)` among its dependencies (read like its role
  requirement: `dependencies=[body_limit(10 * 1024 * 1024)]`), and its limit replaces the
  service's for it, checked against a declared Content-Length before the body is read;
* the gate in front of the body: the first time anything reads a request's body, the route it
  was routed to is authenticated and authorized first (its role dependencies, from
  shared.web.auth.require) and its media type checked (415), so a caller without a credential
  gets 401 with not one byte of the body read, though FastAPI reads a route's body before it
  resolves the route's dependencies;
* an answer sent before its request's body was read to the end closes the connection (the
  client would otherwise go on sending what nobody reads);
* the security headers on every answer (`security_headers`).

Exact media types (`media_type_problem`, `require_media_type`, `body_media_type`): a JSON body
is `application/json` with at most a UTF-8 charset parameter; `text/plain; x=json` or
`application/jsonx` are not JSON. The same check serves XML (`application/xml`) and forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi import params as fastapi_params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope

from shared.kernel.errors import PayloadTooLarge, Problem, UnsupportedMediaType
from shared.web.auth import RoleRequirement, authorize
from shared.web.problems import EdgeRefusal

JSON_MEDIA = "application/json"
XML_MEDIA = "application/xml"
FORM_MEDIA = "application/x-www-form-urlencoded"

_NAMES = {JSON_MEDIA: "JSON", XML_MEDIA: "XML", FORM_MEDIA: "a form"}


# --- media types ----------------------------------------------------------------------------


def parse_media_type(value: str) -> tuple[str, dict[str, str]] | None:
    """`type/subtype` (lower case) and its parameters (names lower case, values unquoted); None
    for a value that is not one media type."""
    head, *rest = value.split(";")
    kind = head.strip().lower()
    top, slash, sub = kind.partition("/")
    if not slash or not top or not sub or any(c.isspace() for c in kind):
        return None
    params: dict[str, str] = {}
    for part in rest:
        if not part.strip():
            continue
        name, eq, raw = part.partition("=")
        name = name.strip().lower()
        if not eq or not name or name in params:
            return None
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        params[name] = raw
    return kind, params


def media_type_problem(content_type: str | None, accepted: Sequence[str]) -> str | None:
    """Why a body sent as `content_type` is not one of `accepted`, or None when it is: the media
    type itself, exactly, with no parameter but a UTF-8 charset (no header at all is JSON)."""
    wanted = " or ".join(accepted)
    if not content_type:
        # A JSON API's clients have long left the header out (the services took such a body as
        # JSON); any other body must say what it is.
        return None if JSON_MEDIA in accepted else f"send the body as {wanted} (the Content-Type header is missing)"
    parsed = parse_media_type(content_type)
    if parsed is None or parsed[0] not in accepted:
        return f"send the body as {wanted}, not {content_type[:100]!r}"
    kind, params = parsed
    extra = sorted(set(params) - {"charset"})
    if extra:
        return f"{kind} takes no parameter but charset (got {', '.join(extra)[:100]})"
    charset = params.get("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        return f"{_NAMES.get(kind, kind)} bodies are UTF-8 (got charset {charset[:40]!r})"
    return None


def has_body(headers: Headers) -> bool:
    """Whether a request says it carries a body (a positive Content-Length, or chunks)."""
    length = headers.get("content-length")
    if length is not None:
        return not length.isdigit() or int(length) > 0
    return "transfer-encoding" in headers


def require_media_type(request: Request, *accepted: str) -> None:
    """415 unless the request's body, if it has one, is sent as one of `accepted`."""
    if has_body(request.headers):
        problem = media_type_problem(request.headers.get("content-type"), accepted)
        if problem is not None:
            raise UnsupportedMediaType(problem)


def body_media_type(*accepted: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (415) a body not sent as one of `accepted`:
    `Depends(body_media_type(XML_MEDIA))` for a route that takes XML."""

    async def dependency(request: Request) -> None:
        require_media_type(request, *accepted)

    return dependency


# --- what a route asks of a request before its body ------------------------------------------


class BodyLimit:
    """The marker dependency of a route's own body limit (it does nothing when called: the edge
    finds it among the route's dependencies and counts the body against it)."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("a body limit is a positive number of bytes")
        self.max_bytes = max_bytes

    async def __call__(self) -> None:
        return None


def body_limit(max_bytes: int) -> Any:
    """`dependencies=[body_limit(10 * 1024 * 1024)]`: this route's bodies may be that large (more
    or less than the service's `body_max_bytes`)."""
    return Depends(BodyLimit(max_bytes))


@dataclass(frozen=True)
class RouteRule:
    roles: tuple[tuple[str, ...], ...]  # every role requirement among the route's dependencies
    media: tuple[str, ...]  # the media types its body may be sent as; () when the route checks itself
    body_limit: int | None = None  # its own body limit (BodyLimit), else the service's


_NO_RULE = RouteRule((), ())


def rule_of(route: Any) -> RouteRule:
    if not isinstance(route, APIRoute):
        return _NO_RULE
    roles: list[tuple[str, ...]] = []
    limits: list[int] = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, RoleRequirement):
            roles.append(dependant.call.roles)
        elif isinstance(dependant.call, BodyLimit):
            limits.append(dependant.call.max_bytes)
        pending.extend(dependant.dependencies)
    media: tuple[str, ...] = ()
    if route.body_field is not None:
        is_form = isinstance(route.body_field.field_info, fastapi_params.Form)
        media = (FORM_MEDIA,) if is_form else (JSON_MEDIA,)
    else:
        # A route that reads its body by hand documents it (openapi_extra): what it documents
        # is what it takes.
        content = ((route.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
        media = tuple(str(kind) for kind in content)
    return RouteRule(tuple(dict.fromkeys(roles)), media, min(limits) if limits else None)


def body_ceiling(app: Any, default: int, rules: RouteRules) -> int:
    """The largest body any of `app`'s routes takes: what a declared Content-Length is refused
    beyond before routing (each route's own limit is held at its gate)."""
    limits = [default]
    pending = list(getattr(app, "routes", ()))
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router whole
        if included is not None:
            pending.extend(included.routes)
        elif (limit := rules.of(route).body_limit) is not None:
            limits.append(limit)
    return max(limits)


class RouteRules:
    """Each route's rule, worked out once (routes live as long as the app)."""

    def __init__(self) -> None:
        self._rules: dict[int, RouteRule] = {}

    def of(self, route: Any) -> RouteRule:
        key = id(route)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = rule_of(route)
        return rule


async def check_before_body(scope: Scope, rules: RouteRules) -> RouteRule:
    """The gate: the routed route's credentials and media type, as the body is first read."""
    rule = rules.of(scope.get("route"))
    if not rule.roles and not rule.media:
        return rule
    request = Request(scope)
    try:
        for roles in rule.roles:
            await authorize(request, *roles)  # type: ignore[arg-type]
        if rule.media:
            require_media_type(request, *rule.media)
    except Problem as problem:
        raise EdgeRefusal(problem) from None
    return rule


class BodyReader:
    """A request's `receive`, gated and counted: the gate before the first read, then 413 from
    the read that takes the body past `limit` bytes. `done` says whether the body was read to
    its end."""

    def __init__(self, scope: Scope, receive: Receive, limit: int, rules: RouteRules) -> None:
        self.scope = scope
        self.inner = receive
        self.limit = limit
        self.rules = rules
        self.read = 0
        self.done = False
        self._gated = False
        self._refusal: EdgeRefusal | None = None

    async def receive(self) -> Message:
        if self._refusal is not None:
            raise self._refusal
        if not self._gated:
            self._gated = True
            try:
                rule = await check_before_body(self.scope, self.rules)
                if rule.body_limit is not None:
                    self.limit = rule.body_limit
                length = Headers(scope=self.scope).get("content-length")
                if length is not None and length.isdigit() and int(length) > self.limit:
                    raise EdgeRefusal(too_large(self.limit))  # declared too large: not one byte read
            except EdgeRefusal as refusal:
                self._refusal = refusal
                raise
        message = await self.inner()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit:
                self._refusal = EdgeRefusal(too_large(self.limit))
                raise self._refusal
            if not message.get("more_body", False):
                self.done = True
        return message


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request bodies are limited to {limit} bytes")


# --- security headers -----------------------------------------------------------------------

# A page that sets no policy of its own: its own scripts, styles and images only (inline style
# admitted, inline script not), forms posting to itself, never framed. The services' pages set
# stricter ones (notify's 公示 page and the staff pages), which keep theirs.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# An API answer is data: opened in a browser, it runs and loads nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc load their scripts from a CDN and start them inline: only framing
# is refused there.
DOCS_CSP = "frame-ancestors 'none'"


_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_CSP = b"content-security-policy"
_CACHE_CONTROL = b"cache-control"
_NO_STORE = b"no-store"


def security_headers(message: Message, *, authenticated: bool, docs: bool) -> None:
    """Adds the security headers to a response's start message: the answer's own values stand,
    but a Content-Security-Policy without frame-ancestors gets frame-ancestors 'none', and every
    answer to a request with a credential (Authorization or a cookie) is `no-store`, whatever
    the route said (a shared cache must never keep one caller's answer for another). Works on
    the raw header list: it runs for every answer, and MutableHeaders costs several times more."""
    raw: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
    at: dict[bytes, int] = {}
    for i, (name, _) in enumerate(raw):
        at.setdefault(name.lower(), i)
    for name, value in _ALWAYS:
        if name not in at:
            raw.append((name, value))
    csp_at = at.get(_CSP)
    if csp_at is None:
        if docs:
            csp = DOCS_CSP
        else:
            kind_at = at.get(b"content-type")
            html = kind_at is not None and raw[kind_at][1].lower().startswith(b"text/html")
            csp = PAGE_CSP if html else API_CSP
        raw.append((_CSP, csp.encode()))
    elif b"frame-ancestors" not in raw[csp_at][1]:
        raw[csp_at] = (_CSP, raw[csp_at][1].rstrip(b"; ") + b"; frame-ancestors 'none'")
    if authenticated:
        cache_at = at.get(_CACHE_CONTROL)
        if cache_at is None:
            raw.append((_CACHE_CONTROL, _NO_STORE))
        else:
            raw[cache_at] = (_CACHE_CONTROL, _NO_STORE)
    message["headers"] = raw
