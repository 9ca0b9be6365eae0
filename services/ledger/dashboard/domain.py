"""The dashboard's pure parts: who may do what, the list filters, the live cursor, and the rows
it shows. No I/O; the caller passes the clock. Sessions and CSRF tokens are the staff pages'
(shared.web.sessions): the cookie names who signed in, never a token or key.

Who sees what (CONTRACT.md, "Who may call what"): operators, reviewers and auditors sign in;
everyone signed in sees the pools and the review queue; operators and auditors the recent decisions
and revocations; only an operator revokes and only a reviewer reviews (the bootstrap operator
holds both roles); an auditor changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ledger.domain import ListFilter, PoolBalance, PoolKey
from services.ledger.journal.domain import pool_account
from shared.contracts.events import ANY_BENEFICIARY
from shared.web.auth import Principal, Role

COOKIE_NAME = "grantline_dashboard"
SESSION_LABEL = b"grantline.ledger.dashboard.session.v2"  # what the dashboard's sessions are signed for


# ---------------------------------------------------------------------------------------------
# Who may do what here
# ---------------------------------------------------------------------------------------------

DASHBOARD_ROLES: tuple[Role, ...] = ("operator", "reviewer", "auditor")  # who signs in


@dataclass(frozen=True)
class Abilities:
    """What the signed-in principal may see and do on the dashboard."""

    principal: Principal

    @property
    def sees_activity(self) -> bool:
        """Recent decisions and revocations (the ledger's lists are operators' and auditors')."""
        return not self.principal.roles.isdisjoint({"operator", "auditor"})

    @property
    def revokes(self) -> bool:
        return "operator" in self.principal.roles

    @property
    def reviews(self) -> bool:
        return "reviewer" in self.principal.roles

    @property
    def revoked_by(self) -> str:
        """Who a revocation from here is recorded as (`operator:dashboard`, `stf_…:dashboard`)."""
        return f"{self.principal.who}:dashboard"


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
    """The last decision (decisions.seq), and revocation or review (journal seq), a page or stream
    has shown."""

    decision_seq: int
    journal_seq: int

    def __str__(self) -> str:
        return f"{self.decision_seq}.{self.journal_seq}"

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
