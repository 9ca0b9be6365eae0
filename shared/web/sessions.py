"""Staff sessions on a service's own pages (the ledger's dashboard, notify's objections page):
HMAC-signed session cookies and CSRF tokens. Pure: no I/O; the caller passes the clock.

Sessions are stateless. The cookie carries `<session id>.<expiry unix>.<who, base64url>.<hex
HMAC-SHA256>`, never a token or key: `who` is the identity signed in (`operator`, `auditor`, or a
staff id), whose roles the service looks up again on every request, so a deactivated staff
member's session ends with the key. The signing key is derived from the operator token and a
label of the page's own, so rotating the token signs every session out and one page's cookie is
no session on another's. The CSRF token of a session is an HMAC of its id under the same key:
forms carry it, POSTs must send it back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_SECONDS = 8 * 3600
_COOKIE_MAX = 400


@dataclass(frozen=True)
class StaffSession:
    sid: str
    expires: int  # unix seconds
    who: str = "operator"  # the identity signed in: operator, auditor, or a staff id


def signing_key(operator_token: str, label: bytes) -> bytes:
    """The key a page signs its sessions with: `label` names the page (and its cookie format's version)."""
    return hmac.new(operator_token.encode(), label, hashlib.sha256).digest()


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def issue_session(key: bytes, now: float, who: str = "operator",
                  ttl_s: int = SESSION_SECONDS) -> tuple[str, StaffSession]:
    """A new session of `who` and its signed cookie value."""
    session = StaffSession(secrets.token_urlsafe(18), int(now) + ttl_s, who)
    encoded = base64.urlsafe_b64encode(who.encode()).decode().rstrip("=")
    payload = f"{session.sid}.{session.expires}.{encoded}"
    return f"{payload}.{_sign(key, payload)}", session


def read_session(key: bytes, value: str | None, now: float) -> StaffSession | None:
    """The session of a cookie value, or None when absent, malformed, forged or expired."""
    if not value or len(value) > _COOKIE_MAX:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    sid, expires, encoded, signature = parts
    if not hmac.compare_digest(_sign(key, f"{sid}.{expires}.{encoded}"), signature):
        return None
    if int(expires) <= now:
        return None
    try:
        who = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return StaffSession(sid, int(expires), who) if who else None


def csrf_token(key: bytes, session: StaffSession) -> str:
    return _sign(key, f"csrf:{session.sid}")


def csrf_ok(key: bytes, session: StaffSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(key, session), given or "")


def same_origin(fetch_site: str | None, origin: str | None, host: str) -> bool:
    """A cross-site form POST carries the attacker's Origin; SameSite=Strict already keeps our cookie off it."""
    if fetch_site is not None:  # browsers that send it say exactly where the request came from
        return fetch_site in ("same-origin", "none")
    if origin is None:
        return True
    return urlsplit(origin).netloc == host
