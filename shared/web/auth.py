"""Bearer tokens: the bootstrap operator and auditor, staff members and partners.

The bootstrap tokens come from settings; staff keys (`gls_…`) and partner keys (`glk_…`) are
stored only as SHA-256 hashes, in every service's directory (shared.messaging.directory). Every
comparison is constant-time over the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request

from shared.kernel.errors import Forbidden, TooManyRequests, Unauthorized
from shared.messaging.directory import Credential, find_credential, find_staff
from shared.observability.metrics import RATE_LIMITED
from shared.web.ratelimit import retry_after_header

Role = Literal["admin", "operator", "reviewer", "payment_officer", "auditor", "partner"]
STAFF_ROLES: tuple[Role, ...] = ("admin", "operator", "reviewer", "payment_officer", "auditor")
# CONTRACT.md, "Who may call what": the bootstrap operator token holds every staff role except
# auditor's (an auditor reads everything and writes nothing; an operator writes).
BOOTSTRAP_OPERATOR_ROLES: frozenset[Role] = frozenset(STAFF_ROLES) - {"auditor"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an identity (`operator`, `auditor`, a staff id, a partner id) and its roles."""

    id: str
    roles: frozenset[Role]
    name: str | None = None
    partner_id: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.partner_id is not None

    @property
    def who(self) -> str:
        """The identity as recorded in text columns and events (`partner:ptn_…`, `operator`)."""
        return f"partner:{self.partner_id}" if self.partner_id else self.id

    @property
    def actor(self) -> dict[str, str]:
        """The identity as recorded in JSON: `{"id", "name"}`, the name left out when there is none."""
        return {"id": self.id} if self.name is None else {"id": self.id, "name": self.name}


OPERATOR = Principal("operator", BOOTSTRAP_OPERATOR_ROLES)
AUDITOR = Principal("auditor", frozenset({"auditor"}))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(hash_secret(given), hash_secret(expected))


def new_api_key() -> str:
    """A partner's key."""
    return "glk_" + secrets.token_urlsafe(32)


def new_staff_key() -> str:
    """A staff member's key."""
    return "gls_" + secrets.token_urlsafe(32)


def webhook_secret_for(partner_id: str, signing_key: str) -> str:
    """Derived, not stored: intake shows it once, notify recomputes it to sign."""
    return "whsec_" + hmac.new(signing_key.encode(), partner_id.encode(), hashlib.sha256).hexdigest()


# How long a key stays known without asking the directory again. A staff member's only briefly,
# so a deactivation is refused everywhere within seconds; a partner's key is never deactivated.
STAFF_KEY_TTL_SECONDS = 1.0
PARTNER_KEY_TTL_SECONDS = 30.0


class KeyCache:
    """Key hash → principal for a short while, so hot callers skip a query per request. One per
    app (`app.state.keys`): each service answers from its own directory."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: dict[str, tuple[Principal, float]] = {}

    def get(self, key_hash: str) -> Principal | None:
        item = self._items.get(key_hash)
        if item and item[1] > time.monotonic():
            return item[0]
        return None

    def put(self, key_hash: str, principal: Principal) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        ttl_seconds = PARTNER_KEY_TTL_SECONDS if principal.is_partner else STAFF_KEY_TTL_SECONDS
        self._items[key_hash] = (principal, time.monotonic() + ttl_seconds)


def _principal(credential: Credential) -> Principal:
    if credential.kind == "partner":
        return Principal(credential.id, frozenset({"partner"}), partner_id=credential.id)
    # Only staff roles: a replica row can never make a staff key a partner's.
    roles = frozenset(role for role in STAFF_ROLES if role in credential.roles)
    return Principal(credential.id, roles, name=credential.name)


async def principal_for_token(app: FastAPI, token: str) -> Principal:
    """Whose `token` is, in this service: a bootstrap token's identity, an active staff member
    (`gls_…`) or a partner (`glk_…`); Unauthorized for anything else, a deactivated key included."""
    settings = app.state.ctx.settings
    if same_secret(token, settings.operator_token):
        return OPERATOR
    if same_secret(token, settings.auditor_token):
        return AUDITOR
    key_hash = hash_secret(token)
    cache: KeyCache = app.state.keys
    principal = cache.get(key_hash)
    if principal is None:
        async with app.state.ctx.maker() as session:
            found = await find_credential(session, key_hash)
        if found is None or not hmac.compare_digest(found.api_key_hash, key_hash):
            raise Unauthorized("unknown, revoked or deactivated API key")
        principal = _principal(found)
        cache.put(key_hash, principal)
    return principal


async def principal_for_identity(app: FastAPI, identity: str) -> Principal | None:
    """Who an identity recorded earlier is now, in this service (a staff page's session names
    one): a bootstrap identity, or an active staff member; None for anyone else, a deactivated
    member included. Never cached: a deactivation ends the member's sessions at once."""
    if identity == OPERATOR.id:
        return OPERATOR
    if identity == AUDITOR.id:
        return AUDITOR
    async with app.state.ctx.maker() as session:
        found = await find_staff(session, identity)
    return None if found is None else _principal(found)


# Where a request keeps who it was authenticated as: the edge (shared.web.edges) authenticates
# a route's caller before its body is read, and the route's own dependency then finds it here
# (without a second lookup, or a second token taken from the partner's rate limit).
PRINCIPAL_SCOPE_KEY = "grantline.principal"


async def authenticate(request: Request) -> Principal:
    known = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(known, Principal):
        return known
    principal = await _authenticate(request)
    request.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


async def _authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    principal = await principal_for_token(request.app, token.strip())
    limiter = getattr(request.app.state, "partner_limiter", None)
    if principal.partner_id is not None and limiter is not None:
        wait_s = limiter.check(principal.partner_id)
        if wait_s > 0:
            RATE_LIMITED.labels(request.app.state.ctx.name).inc()
            raise TooManyRequests(
                "too many requests for this API key; slow down",
                headers={"Retry-After": retry_after_header(wait_s)},
            )
    return principal


async def authorize(request: Request, *roles: Role) -> Principal:
    """The caller, if it holds one of `roles` (401 / 403 / 429 otherwise). Hot routes call this
    directly instead of through a FastAPI dependency, whose resolution costs more per request
    than the check itself."""
    principal = await authenticate(request)
    if principal.roles.isdisjoint(roles):
        raise Forbidden(f"this action needs one of: {', '.join(roles)}")
    return principal


class RoleRequirement:
    """A route's dependency on a caller holding one of `roles`; the edge finds these among a
    route's dependencies to check them before the body is read (shared.web.edges)."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:
        return await authorize(request, *self.roles)

    def __repr__(self) -> str:
        return f"require({', '.join(self.roles)})"


def require(*roles: Role) -> RoleRequirement:
    return RoleRequirement(roles)
