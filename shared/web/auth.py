"""Bearer tokens for operators, auditors and partners.

Operator and auditor tokens come from settings; partner API keys are stored only as
SHA-256 hashes. Every comparison is constant-time over the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from shared.kernel.errors import Forbidden, TooManyRequests, Unauthorized
from shared.messaging.directory import find_partner_by_key_hash
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
    return "glk_" + secrets.token_urlsafe(32)


def webhook_secret_for(partner_id: str, signing_key: str) -> str:
    """Derived, not stored: intake shows it once, notify recomputes it to sign."""
    return "whsec_" + hmac.new(signing_key.encode(), partner_id.encode(), hashlib.sha256).hexdigest()


class _PartnerCache:
    """Key hash → partner id for a short while, so hot partners skip a query per request."""

    def __init__(self, ttl_s: float = 30.0, size: int = 10_000) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._items: dict[str, tuple[str, float]] = {}

    def get(self, key_hash: str) -> str | None:
        item = self._items.get(key_hash)
        if item and item[1] > time.monotonic():
            return item[0]
        return None

    def put(self, key_hash: str, partner_id: str) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key_hash] = (partner_id, time.monotonic() + self.ttl_s)


_partner_cache = _PartnerCache()


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    token = token.strip()
    settings = request.app.state.ctx.settings
    if same_secret(token, settings.operator_token):
        return OPERATOR
    if same_secret(token, settings.auditor_token):
        return AUDITOR
    key_hash = hash_secret(token)
    partner_id = _partner_cache.get(key_hash)
    if partner_id is None:
        async with request.app.state.ctx.maker() as session:
            found = await find_partner_by_key_hash(session, key_hash)
        if found is None or not hmac.compare_digest(found[1], key_hash):
            raise Unauthorized("unknown or revoked API key")
        partner_id = found[0]
        _partner_cache.put(key_hash, partner_id)
    limiter = getattr(request.app.state, "partner_limiter", None)
    if limiter is not None:
        wait_s = limiter.check(partner_id)
        if wait_s > 0:
            RATE_LIMITED.labels(request.app.state.ctx.name).inc()
            raise TooManyRequests(
                "too many requests for this API key; slow down",
                headers={"Retry-After": retry_after_header(wait_s)},
            )
    return Principal(partner_id, frozenset({"partner"}), partner_id=partner_id)


async def authorize(request: Request, *roles: Role) -> Principal:
    """The caller, if it holds one of `roles` (401 / 403 / 429 otherwise). Hot routes call this
    directly instead of through a FastAPI dependency, whose resolution costs more per request
    than the check itself."""
    principal = await authenticate(request)
    if principal.roles.isdisjoint(roles):
        raise Forbidden(f"this action needs one of: {', '.join(roles)}")
    return principal


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        return await authorize(request, *roles)

    return dependency
