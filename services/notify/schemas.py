"""What the public announcement routes take and answer: the query, the JSON listing, and the
shell of the public pages (公示) with the objection form: plain HTML, every value escaped, no
script at all. The 公示 table itself is rendered by notice_page/schemas.py."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel

from shared.web.openapi import NO_NUL

Year = Annotated[int | None, Query(ge=2000, le=2100, description="support year")]
Program = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=NO_NUL, description="program code, e.g. GT-EQUITY")
]
NoticeStatus = Annotated[Literal["under_notice", "final"] | None, Query(description="under_notice or final")]
AnnouncementLimit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="next_cursor of the page before")]


class PublicAnnouncement(BaseModel):
    """What the public may see: the announcement's id (objections name it), no internal ids, no
    partner, nothing of who objected."""

    id: str
    applicant_name: str
    program: str
    year: int
    subject: str
    amount: str
    published_at: str
    notice_ends_at: str
    finalized_at: str | None
    status: Literal["under_notice", "final"]
    objections_open: int
    # The index of its "published" entry in the transparency log (/v1/transparency); null only
    # for announcements published before the log existed.
    log_index: int | None


class AnnouncementPage(BaseModel):
    items: list[PublicAnnouncement]
    next_cursor: str | None  # null on the last page


# --- the pages' shell and the objection form (the 公示 table is notice_page/schemas.py's) ------

# The page runs no script and loads nothing: even a value that slipped past escaping could
# not execute or exfiltrate anything.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'"
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Colours keep at least 4.5:1 against their background (WCAG AA for body text).
_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei", sans-serif; margin: 2rem; color: #1a1a1a; background: #fff; }
a { color: #0b4f9c; }
a:focus, button:focus, select:focus, input:focus, textarea:focus, summary:focus { outline: 3px solid #0b4f9c; outline-offset: 2px; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; }
p.lede { color: #333; margin-top: 0; max-width: 60rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin: 1rem 0; padding: .6rem .8rem; background: #f3f3f3; border: 1px solid #ccc; }
form.filters select { font: inherit; max-width: 28rem; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
caption { text-align: left; font-weight: bold; padding: .3rem 0; }
th, td { border: 1px solid #bbb; padding: .45rem .6rem; text-align: left; vertical-align: top; }
thead th { background: #e8e8e8; }
tr.group th { background: #e3ecf7; font-size: 1.05rem; }
tr.group small, td small, th small { color: #444; }
th.applicant { font-weight: normal; }
td small { display: block; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.amount .amount { font-weight: bold; }
td.published, td.notice-ends { white-space: nowrap; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: .1rem .4rem; border-radius: .2rem; white-space: nowrap; }
.badge.final { background: #1b5e20; color: #fff; }
.badge.running { background: #fff4e0; color: #6b3f00; border: 1px solid #8a5300; }
tr.final td, tr.final th { background: #f1f8f1; }
td.objections { min-width: 12rem; }
td.objections details { margin-top: .3rem; }
form.objection label { display: block; margin-top: .4rem; }
form.objection input, form.objection textarea { width: 100%; box-sizing: border-box; font: inherit; }
form.objection textarea { min-height: 6rem; }
p.privacy { color: #444; font-size: .9rem; }
ul.problems { color: #8a1c1c; }
"""

OBJECTION_FIELDS = (
    # name, Chinese label, English label, required, longest, multi-line
    ("name", "姓名", "Real name", True, 100, False),
    ("organisation", "单位（选填）", "Organisation (optional)", False, 200, False),
    ("contact", "联系方式（电话或电子邮箱）", "Contact (phone or email)", True, 200, False),
    ("statement", "异议内容及理由", "Your objection and its grounds", True, 20_000, True),
)
PRIVACY_NOTE = (
    "姓名和联系方式仅供审核部门核实，不予公开。"
    "<br><span lang=\"en\">Your name and contact are for the reviewing office only and are never published.</span>"
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def objection_action(announcement_id: str) -> str:
    """Where the page's form posts (form-encoded; it answers with a page)."""
    return f"/announcements/{announcement_id}/objections"


def objection_form(announcement_id: str) -> str:
    """The form to object to one announcement: plain HTML, no script."""
    fields = []
    for name, zh, en, required, longest, multiline in OBJECTION_FIELDS:
        need = " required" if required else ""
        control = (
            f"<textarea name=\"{name}\" maxlength=\"{longest}\"{need}></textarea>"
            if multiline
            else f"<input type=\"text\" name=\"{name}\" maxlength=\"{longest}\"{need}>"
        )
        fields.append(f"<label>{_e(zh)} <span lang=\"en\">{_e(en)}</span>{control}</label>")
    return (
        "<details><summary>提出异议 <span lang=\"en\">Object</span></summary>"
        f"<form class=\"objection\" method=\"post\" action=\"{_e(objection_action(announcement_id))}\">"
        f"{''.join(fields)}<p class=\"privacy\">{PRIVACY_NOTE}</p>"
        "<button type=\"submit\">提交异议 <span lang=\"en\">Submit objection</span></button>"
        "</form></details>"
    )


def page(title: str, main: str) -> str:
    """A whole page of the 公示 site: the head, the style, `main` (already escaped HTML)."""
    return (
        "<!DOCTYPE html>\n"
        "<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{main}</body></html>"
    )
