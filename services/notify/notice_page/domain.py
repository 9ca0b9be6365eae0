"""The 公示 page's pure parts: its query (filters read leniently, as a GET form sends them), a
row's place in the page's order, the groups a page's rows fall into, and whether a notice still
takes objections. No I/O, no clock: `now` is passed in."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

PAGE_PATH = "/announcements"
OPEN_DATA_PATH = "/v1/open-data/awards.csv"
CURSOR_TAG = "notice:"  # the page's own list: a cursor of /v1/announcements is refused here
PAGE_SIZES = (20, 50, 100)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
YEARS = range(2000, 2101)

Status = Literal["under_notice", "final"]
STATUSES: tuple[Status, ...] = ("under_notice", "final")


@dataclass(frozen=True)
class Filters:
    """What the page shows: None is everything."""

    year: int | None = None
    program: str | None = None
    status: Status | None = None

    def query(self) -> dict[str, str]:
        """The filters as the GET form sends them (only those set), for the pages' links."""
        out: dict[str, str] = {}
        if self.year is not None:
            out["year"] = str(self.year)
        if self.program:
            out["program"] = self.program
        if self.status:
            out["status"] = self.status
        return out


def read_filters(year: str | None, program: str | None, status: str | None) -> Filters:
    """The filters from the query string. The form's "all" options send empty values, which mean
    no filter; a year out of range or an unknown status is no filter either (a page answers with
    the whole list rather than an error a citizen cannot act on)."""
    wanted_year = int(year) if year and year.isdigit() and int(year) in YEARS else None
    wanted_program = program.strip() if program and program.strip() else None
    wanted_status: Status | None = None
    for known in STATUSES:
        if status == known:
            wanted_status = known
    return Filters(wanted_year, wanted_program, wanted_status)


def read_limit(limit: int | None) -> int:
    return DEFAULT_PAGE_SIZE if limit is None else max(1, min(limit, MAX_PAGE_SIZE))


@dataclass(frozen=True)
class Position:
    """A row's place in the page's order: support year, program code and call id descending (the
    groups; no call, "", last in its program's year), then newest first, then application id. A
    page's cursor names its last row."""

    year: int
    program: str
    call: str  # the call id, "" for an announcement without one
    published_at: datetime
    application_id: str

    def key(self) -> str:
        return json.dumps([self.year, self.program, self.call, self.published_at.isoformat(), self.application_id],
                          ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def parse(cls, key: str) -> Position:
        """ValueError for a key `key()` did not write (a cursor from before calls included)."""
        try:
            year, program, call, at, application_id = json.loads(key)
            when = datetime.fromisoformat(at)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a cursor returned by this page") from exc
        if (not isinstance(year, int) or year not in YEARS or not isinstance(program, str) or not program
                or not isinstance(call, str) or not isinstance(application_id, str) or not application_id
                or when.tzinfo is None):
            raise ValueError("not a cursor returned by this page")
        return cls(year, program, call, when, application_id)


@dataclass
class Group:
    """The rows of one program's call on a page, or of its support year for announcements without
    a call (`continued`: its first rows were on the page before). `call_title` is None when the
    announcement has no call or the call's title is not known here (yet)."""

    program: str
    year: int
    call_id: str | None = None
    call_title: str | None = None
    items: list[Mapping[str, Any]] = field(default_factory=list)
    continued: bool = False

    @property
    def key(self) -> tuple[str, int, str]:
        return self.program, self.year, self.call_id or ""


def groups_of(items: Sequence[Mapping[str, Any]], after: Position | None) -> list[Group]:
    """A page's rows, in the page's order, cut where the program, the year or the call changes."""
    groups: list[Group] = []
    for item in items:
        call_id = item.get("call_id") or None
        group = Group(str(item["program"]), int(item["year"]), call_id, item.get("call_title") or None)
        if not groups or groups[-1].key != group.key:
            group.continued = not groups and after is not None and (after.program, after.year, after.call) == group.key
            groups.append(group)
        groups[-1].items.append(item)
    return groups


@dataclass(frozen=True)
class NoticePage:
    """What one page shows: its rows in groups, where the next page starts, the filter options
    (support years with announcements, program codes) and the transparency log's size."""

    filters: Filters
    limit: int
    groups: list[Group]
    count: int
    next_cursor: str | None
    continues: bool  # a page after the first
    years: list[int]
    programs: list[str]
    log_size: int


def takes_objections(item: Mapping[str, Any], now: datetime) -> bool:
    """Under notice, with an id to object to, and its notice not yet ended at `now` (the API
    refuses a late objection with 409: the page does not offer one)."""
    if item.get("status") != "under_notice" or not item.get("id"):
        return False
    ends = item.get("notice_ends_at")
    if isinstance(ends, str):
        try:
            ends = datetime.fromisoformat(ends)
        except ValueError:
            return False
    return isinstance(ends, datetime) and ends > now


def inclusion_proof_path(index: int | None, size: int) -> str | None:
    """The transparency log's inclusion proof of entry `index` in the tree of `size` entries (None
    when there is no entry, or the tree does not hold it yet)."""
    if index is None or not 0 <= index < size:
        return None
    return f"/v1/transparency/proof/inclusion?index={index}&size={size}"
