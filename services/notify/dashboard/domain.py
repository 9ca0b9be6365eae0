"""The objections page's pure parts: its session's names, who may do what, the list's status
filter and the notices after a resolution. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.web.auth import Principal, Role

COOKIE_NAME = "grantline_notify_staff"
COOKIE_PATH = "/staff"
SESSION_LABEL = b"grantline.notify.staff.session.v1"  # what this page's sessions are signed for
PAGE_PATH = "/staff/objections"
PAGE_SIZE = 50
CURSOR_MAX = 2000

# Who signs in: those who read GET /v1/objections (ReviewQueueReaderDep).
PAGE_ROLES: tuple[Role, ...] = ("reviewer", "operator", "auditor")
STATUSES = ("open", "upheld", "dismissed", "all")


@dataclass(frozen=True)
class Abilities:
    """What the signed-in principal may see and do on the objections page."""

    principal: Principal

    @property
    def resolves(self) -> bool:
        return "reviewer" in self.principal.roles

    @property
    def sees_objector(self) -> bool:
        """The objector's name, organisation and contact: reviewers only, as the API shows them."""
        return "reviewer" in self.principal.roles


def status_of(query: Mapping[str, str]) -> str:
    """The list's status filter from the query string: open unless another one of STATUSES is asked."""
    status = query.get("status", "open")
    return status if status in STATUSES else "open"


def cursor_of(query: Mapping[str, str]) -> str | None:
    """The page's cursor from the query string; one no page could have handed out is none."""
    cursor = query.get("cursor") or None
    return cursor if cursor is not None and len(cursor) <= CURSOR_MAX and "\x00" not in cursor else None


def notice_of(resolved: Mapping[str, Any]) -> str:
    """The notice after a resolution: what the reviewer's choice did."""
    if resolved["status"] == "upheld":
        return "upheld"
    return "dismissed-final" if resolved["finalized"] else "dismissed"
