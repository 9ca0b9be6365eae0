"""Dashboard sessions and CSRF tokens: HMAC-signed, stateless, pure (the caller passes the clock).

The cookie carries `<session id>.<expiry unix>.<hex HMAC-SHA256>`, never the operator token. The key
is derived from the operator token, so rotating the token signs every session out. The CSRF token of
a session is an HMAC of its id under the same key: forms carry it, POSTs must send it back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

COOKIE_NAME = "grantline_dashboard"
SESSION_SECONDS = 8 * 3600
_KEY_LABEL = b"grantline.ledger.dashboard.session.v1"


@dataclass(frozen=True)
class DashboardSession:
    sid: str
    expires: int  # unix seconds


def signing_key(operator_token: str) -> bytes:
    return hmac.new(operator_token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def issue_session(key: bytes, now: float, ttl_s: int = SESSION_SECONDS) -> tuple[str, DashboardSession]:
    """A new session and its signed cookie value."""
    session = DashboardSession(secrets.token_urlsafe(18), int(now) + ttl_s)
    payload = f"{session.sid}.{session.expires}"
    return f"{payload}.{_sign(key, payload)}", session


def read_session(key: bytes, value: str | None, now: float) -> DashboardSession | None:
    """The session of a cookie value, or None when absent, malformed, forged or expired."""
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    sid, expires, signature = parts
    if not hmac.compare_digest(_sign(key, f"{sid}.{expires}"), signature):
        return None
    if int(expires) <= now:
        return None
    return DashboardSession(sid, int(expires))


def csrf_token(key: bytes, session: DashboardSession) -> str:
    return _sign(key, f"csrf:{session.sid}")


def csrf_ok(key: bytes, session: DashboardSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(key, session), given or "")
