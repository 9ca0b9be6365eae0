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

DASHBOARD_ROLES: tuple[Role, ...] = ("operator", "reviewer", "auditor", "payment_officer")  # who signs in


@dataclass(frozen=True)
class Abilities:
    """What the signed-in principal may see and do on the dashboard."""

    principal: Principal

    @property
    def sees_activity(self) -> bool:
        """Recent decisions and revocations (the ledger's lists are operators' and auditors')."""
        return not self.principal.roles.isdisjoint({"operator", "auditor"})

    @property
    def sees_ledger(self) -> bool:
        """The review queue and the pools (and their exports): the readers of /v1/balances and
        /v1/reviews. A payment officer who holds no other role sees the charts and the payments."""
        return not self.principal.roles.isdisjoint({"operator", "reviewer", "auditor"})

    @property
    def sees_payments(self) -> bool:
        """Payment batches and orders (the readers of /v1/payment-orders)."""
        return not self.principal.roles.isdisjoint({"payment_officer", "operator", "auditor"})

    @property
    def exports_payments(self) -> bool:
        """The payments export is payment officers' and auditors' (CONTRACT.md, "Exports")."""
        return not self.principal.roles.isdisjoint({"payment_officer", "auditor"})

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


def search_of(query: Mapping[str, str]) -> str | None:
    """The applicant search (a name, part of one, or a code), trimmed and bounded; None for none."""
    q = (query.get("q") or "").replace("\x00", "").strip()[:60]
    return q or None


def like_pattern(q: str) -> str:
    """`q` as an ILIKE pattern matching it anywhere, its own wildcards taken literally."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def cursor_int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def cursor_text(query: Mapping[str, str], name: str) -> str | None:
    value = (query.get(name) or "").replace("\x00", "")[:200]
    return value or None


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


# ---------------------------------------------------------------------------------------------
# Charts, payments, search results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolUsage:
    """One pool (by name) in one year: its instances summed."""

    pool: str
    year: int | None  # None: per-subject pools, which have no year
    instances: int
    cap_fen: int
    committed_fen: int
    held_fen: int


@dataclass(frozen=True)
class ProgramMonth:
    """What a program committed (awards live or held, by decision month) and paid (settled, by
    settlement month) in one month, Beijing time (`2024-06`)."""

    program: str
    month: str
    committed_fen: int
    paid_fen: int


@dataclass(frozen=True)
class CallBudget:
    call_id: str
    year: int | None
    program: str | None
    cap_fen: int
    committed_fen: int
    held_fen: int


@dataclass(frozen=True)
class BatchLine:
    id: str
    status: str
    program: str | None
    year: int | None
    count: int
    control_sum_fen: int
    created_by: dict[str, str]
    approved_by: dict[str, str] | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class OrderLine:
    id: str
    application_id: str
    applicant_id: str
    name: str | None
    program: str
    year: int
    amount_fen: int
    status: str
    batch_id: str | None
    updated_at: str


@dataclass(frozen=True)
class ApplicantHit:
    """An applicant the search found: its code, latest name and how many decisions it has."""

    beneficiary: str
    name: str | None
    decisions: int
