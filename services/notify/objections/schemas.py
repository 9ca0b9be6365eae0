"""What the objection routes take and answer: the objection (JSON, or the page's form), the
resolution, the staff list, and the page that answers the form (plain HTML, every value escaped)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from services.notify.schemas import OBJECTION_FIELDS, PRIVACY_NOTE, page
from shared.web.openapi import NO_NUL


def _text(longest: int) -> Any:
    # Blank is missing (a name of spaces is no real name); NUL cannot be stored. HTML is kept as
    # written: the JSON carries it as text and every page escapes it.
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=longest, pattern=NO_NUL)


_LONGEST = {name: longest for name, _zh, _en, _required, longest, _multi in OBJECTION_FIELDS}

AnnouncementId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
ObjectionId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
ObjectionStatusQuery = Annotated[
    Literal["open", "upheld", "dismissed"] | None, Query(description="open, upheld or dismissed")
]
ObjectionLimit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="next_cursor of the page before")]


class ObjectionIn(BaseModel):
    """An objection (异议): real name, contact and statement required; organisation optional."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "name": "张三", "organisation": "某某大学", "contact": "13800000000", "statement": "申报材料与事实不符……",
    }})

    name: Annotated[str, _text(_LONGEST["name"])]
    organisation: Annotated[str, _text(_LONGEST["organisation"])] | None = None
    contact: Annotated[str, _text(_LONGEST["contact"])]
    statement: Annotated[str, _text(_LONGEST["statement"])]

    @field_validator("organisation", mode="before")
    @classmethod
    def _blank_organisation_is_none(cls, value: object) -> object:
        # Optional: left blank (the page's form sends an empty field) is the same as left out.
        return None if isinstance(value, str) and not value.strip() else value


class ObjectionAccepted(BaseModel):
    id: str
    status: Literal["open"]


class ResolveIn(BaseModel):
    outcome: Literal["upheld", "dismissed"]
    reason: Annotated[str, _text(2000)]


class Actor(BaseModel):
    id: str
    name: str | None = None


class Resolved(BaseModel):
    id: str
    status: Literal["upheld", "dismissed"]
    announcement_id: str
    application_id: str
    reason: str
    resolved_by: Actor
    resolved_at: str
    finalized: bool
    """The last open objection was dismissed after the notice ended: the award is final now."""


class Resolution(BaseModel):
    outcome: Literal["upheld", "dismissed"]
    reason: str
    by: Actor
    at: str


class ObjectionView(BaseModel):
    """An objection as staff see it. `name`, `organisation` and `contact` identify the objector:
    reviewers see them (they may have to reach the objector); for everyone else they are null."""

    id: str
    announcement_id: str
    application_id: str
    applicant_name: str
    program: str
    year: int
    subject: str
    status: Literal["open", "upheld", "dismissed"]
    statement: str
    name: str | None
    organisation: str | None
    contact: str | None
    filed_at: str
    resolution: Resolution | None


class ObjectionPage(BaseModel):
    items: list[ObjectionView]
    next_cursor: str | None  # null on the last page


# --- the page that answers the form ---------------------------------------------------------

_LABELS = {name: f"{zh} {en}" for name, zh, en, _required, _longest, _multi in OBJECTION_FIELDS}

_TITLES = {
    202: ("异议已受理", "Your objection was received"),
    404: ("未找到该公示", "No such announcement"),
    409: ("不再受理异议", "Objections are no longer accepted"),
    413: ("内容过长", "Too long"),
    415: ("提交格式有误", "Not a form submission"),
    422: ("请补充或更正以下内容", "Please complete or correct"),
    429: ("提交过于频繁", "Too many submissions"),
}


def render_answer(status: int, *, objection_id: str | None = None, detail: str = "",
                  problems: Sequence[tuple[str, str]] = ()) -> str:
    """The page answering the form: received (with the objection's number), or why not."""
    zh, en = _TITLES.get(status, ("无法受理", "Not accepted"))
    body = [f"<h1>{escape(zh)} <span lang=\"en\">{escape(en)}</span></h1>"]
    if objection_id is not None:
        body.append(
            f"<p>受理编号 <span lang=\"en\">Reference</span>: <code>{escape(objection_id)}</code></p>"
            f"<p class=\"privacy\">{PRIVACY_NOTE}</p>"
        )
    if detail:
        body.append(f"<p class=\"detail\" lang=\"en\">{escape(detail)}</p>")
    if problems:
        items = "".join(
            f"<li>{escape(_LABELS.get(field, field))}: <span lang=\"en\">{escape(message)}</span></li>"
            for field, message in problems
        )
        body.append(f"<ul class=\"problems\">{items}</ul>")
    body.append("<p><a href=\"/announcements\">返回公示 <span lang=\"en\">Back to the notice</span></a></p>")
    return page(f"{zh} {en}", f"<main>{''.join(body)}</main>")
