"""What the catalog and call routes take and answer (CONTRACT.md, "Policy administration"). Who
acted and a call's event window are answered as their events carry them (shared.contracts)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.eligibility.policy.domain import text_problem
from shared.contracts.events import Actor
from shared.contracts.events import EventWindow as EventWindowOnTheWire
from shared.kernel.money import parse_amount
from shared.web.openapi import NO_NUL

_FEN_MAX = 2**63 - 1  # a bigint column: a larger budget is a 422, not a database error
_YEARS_MIN, _YEARS_MAX = 2000, 2100

Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="next_cursor of the page before")]
Limit = Annotated[int, Query(ge=1, le=200)]
ProgramCode = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=NO_NUL, description="program code, e.g. GT-EQUITY")
]
Year = Annotated[int | None, Query(ge=_YEARS_MIN, le=_YEARS_MAX, description="support year")]
OpenNow = Annotated[bool | None, Query(alias="open", description="true: only calls open now; false: only calls not open now")]
VersionPath = Annotated[str, Path(max_length=200, pattern=NO_NUL, description="sha256:… as published")]
CallId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]


def _text(value: str | None) -> str | None:
    """Text that reaches PostgreSQL: no NUL (text refuses it), and something besides blanks."""
    if value is None:
        return None
    if (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# --- catalog versions -----------------------------------------------------------------------


class PublishVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(description="a catalog document, same schema as the shipped catalog.json")
    note: str | None = Field(default=None, min_length=1, max_length=500)

    _note_text = field_validator("note")(_text)


class Published(BaseModel):
    version: str


class VersionListing(BaseModel):
    version: str
    published_at: str
    published_by: Actor
    note: str | None


class VersionPage(BaseModel):
    items: list[VersionListing]
    next_cursor: str | None  # null on the last page


class LatestCatalog(BaseModel):
    version: str
    published_at: str
    document: dict[str, Any]


# --- calls ----------------------------------------------------------------------------------


class EventWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> EventWindow:
        if self.to < self.from_:
            raise ValueError("to is before from")
        return self


class OpenCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str = Field(min_length=1, max_length=64)
    year: int = Field(ge=_YEARS_MIN, le=_YEARS_MAX)
    title: str = Field(min_length=1, max_length=500)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    event_window: EventWindow
    catalog_version: str | None = Field(default=None, max_length=200, description="default: the latest")
    budget: str | None = Field(default=None, description='yuan as a decimal string, e.g. "50000000.00"')

    _texts = field_validator("program", "title", "catalog_version")(_text)

    @field_validator("opens_at", "closes_at")
    @classmethod
    def _this_century(cls, value: AwareDatetime) -> AwareDatetime:
        # A call is about support years 2000..2100; a time far outside is a typo, and the year 1
        # or 9999 shifted to UTC is out of the database's (and Python's) range: a 422, not a 500.
        if not _YEARS_MIN <= value.year <= _YEARS_MAX:
            raise ValueError(f"must be between {_YEARS_MIN} and {_YEARS_MAX}")
        return value

    @field_validator("budget")
    @classmethod
    def _amount(cls, value: str | None) -> str | None:
        if value is not None and parse_amount(value) > _FEN_MAX:
            raise ValueError("is too large")
        return value

    @property
    def budget_fen(self) -> int | None:
        return None if self.budget is None else parse_amount(self.budget)


class CallView(BaseModel):
    id: str
    program: str
    year: int
    title: str
    status: Literal["scheduled", "open", "closed"]
    opens_at: str
    closes_at: str
    event_window: EventWindowOnTheWire
    catalog_version: str
    budget: str | None
    opened_by: Actor
    opened_at: str
    closed_by: Actor | None
    closed_at: str | None
    close_reason: str | None


class CallPage(BaseModel):
    items: list[CallView]
    next_cursor: str | None  # null on the last page
