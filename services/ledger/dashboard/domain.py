"""The dashboard's pure parts: sessions and CSRF tokens, the list filters, the live cursor, and
the rows it shows. No I/O; the caller passes the clock.

Sessions are HMAC-signed and stateless. The cookie carries `<session id>.<expiry unix>.<hex HMAC-SHA256>`, never the operator token. The key
is derived from the operator token, so rotating the token signs every session out. The CSRF token of
a session is an HMAC of its id under the same key: forms carry it, POSTs must send it back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from services.ledger.domain import ListFilter, PoolBalance, PoolKey
from services.ledger.journal.domain import pool_account
from shared.contracts.events import ANY_BENEFICIARY

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


def same_origin(fetch_site: str | None, origin: str | None, host: str) -> bool:
    """A cross-site form POST carries the attacker's Origin; SameSite=Strict already keeps our cookie off it."""
    if fetch_site is not None:  # browsers that send it say exactly where the request came from
        return fetch_site in ("same-origin", "none")
    if origin is None:
        return True
    return urlsplit(origin).netloc == host


# ---------------------------------------------------------------------------------------------
# Filters and the live cursor
# ---------------------------------------------------------------------------------------------


def filters_of(query: Mapping[str, str]) -> ListFilter:
    """The page's filters from its query string; anything unusable is ignored, never an error."""
    year = query.get("year", "")
    return ListFilter(
        # isdigit() admits "²"; int() does not. NUL never reaches PostgreSQL (text refuses it).
        year=int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None,
        program=(query.get("program") or "").replace("\x00", "").strip()[:40] or None,
        beneficiary=(query.get("beneficiary") or "").replace("\x00", "").strip()[:40] or None,
    )


def reason_accepted(reason: str) -> bool:
    return bool(reason.strip()) and len(reason) <= 500


@dataclass(frozen=True)
class LiveCursor:
    """The last decision (decisions.seq) and revocation (journal seq) a page or stream has shown."""

    decision_seq: int
    revocation_seq: int

    def __str__(self) -> str:
        return f"{self.decision_seq}.{self.revocation_seq}"

    @classmethod
    def parse(cls, value: str | None) -> LiveCursor | None:
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 2 or not all(p.isdigit() and len(p) < 19 for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]))


# ---------------------------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------------------------


# Shown as the beneficiary of a pool every applicant shares (a project's, a call's budget).
SHARED_POOL_NAME = "every applicant 全部申报单位"


@dataclass(frozen=True)
class PoolLine:
    balance: PoolBalance
    name: str | None  # the beneficiary's name in its latest decision (SHARED_POOL_NAME for a shared pool)

    @classmethod
    def of(cls, balance: PoolBalance, names: Mapping[str, str | None]) -> PoolLine:
        if balance.key.beneficiary == ANY_BENEFICIARY:
            return cls(balance, SHARED_POOL_NAME)
        return cls(balance, names.get(balance.key.beneficiary))


@dataclass(frozen=True)
class DecisionLine:
    seq: int
    application_id: str
    program: str
    beneficiary: str
    year: int
    status: str
    awarded_fen: int
    recorded_for: str
    name: str | None
    subject: str | None
    has_award: bool
    revoked: bool
    draws: Any  # as stored in decisions.data (the wire's draws)


@dataclass(frozen=True)
class RevocationLine:
    journal_seq: int
    application_id: str
    revoked_at: datetime
    amount_fen: int
    reason: str
    revoked_by: str
    program: str
    beneficiary: str
    year: int
    draws: Any  # as stored in awards.draws
    name: str | None


def accounts_of(draws: Any) -> list[str]:
    """The pool accounts of a decision's draws (the wire's) or an award's (as stored)."""
    out = []
    for d in draws or []:
        if isinstance(d, dict) and "pool" in d:  # decision data: {"pool", "beneficiary", "year", "subject", ...}
            out.append(pool_account(PoolKey(d["pool"], d["beneficiary"], d.get("year"), d.get("subject"))))
        elif isinstance(d, dict) and "account" in d:  # award rows: {"account", "amount"}
            out.append(str(d["account"]))
    return out
