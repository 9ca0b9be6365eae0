"""What the public announcement routes take and answer: the query, the JSON listing, and the
page (公示) as plain HTML, every value escaped, no script at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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


# --- the page -------------------------------------------------------------------------------

STATUS_LABELS = {
    "under_notice": "公示中 Under notice",
    "final": "已生效 Final",
}

# The page runs no script and loads nothing: even a value that slipped past escaping could
# not execute or exfiltrate anything.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'"
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei", sans-serif; margin: 2rem; color: #1a1a1a; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
p.lede { color: #444; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { border: 1px solid #ccc; padding: .45rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.final td.status { color: #1b5e20; }
tr.under_notice td.status { color: #8a5300; }
td.program, td.year { white-space: nowrap; }
td.objections details { margin-top: .3rem; }
form.objection label { display: block; margin-top: .4rem; }
form.objection input, form.objection textarea { width: 100%; box-sizing: border-box; font: inherit; }
form.objection textarea { min-height: 6rem; }
p.privacy { color: #555; font-size: .9rem; }
ul.problems { color: #8a1c1c; }
"""

_COLUMNS = (
    ("申请单位", "Applicant"),
    ("项目", "Program"),
    ("年度", "Year"),
    ("事项", "Subject"),
    ("金额（元）", "Amount (CNY)"),
    ("公示开始", "Published"),
    ("公示截止", "Notice ends"),
    ("状态", "Status"),
    ("异议", "Objections"),
)

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


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    # 2024-05-01T08:00:00.123456+00:00 → 2024-05-01 08:00:00 +00:00 (readable, still exact to the second)
    date, _, rest = iso.partition("T")
    clock = rest[:8]
    zone = rest[-6:] if len(rest) >= 6 and rest[-6] in "+-" else ("UTC" if rest.endswith("Z") else "")
    return f"{date} {clock} {zone}".strip()


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


def _takes_objections(item: dict[str, Any], now: datetime | None) -> bool:
    """Under notice, with an id to object to, and (when the time is known) before the notice ends."""
    if item.get("status") != "under_notice" or not item.get("id"):
        return False
    if now is None:
        return True
    try:
        return datetime.fromisoformat(str(item.get("notice_ends_at"))) > now
    except ValueError:
        return False


def page(title: str, main: str) -> str:
    """A whole page of the 公示 site: the head, the style, `main` (already escaped HTML)."""
    return (
        "<!DOCTYPE html>\n"
        "<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{main}</body></html>"
    )


def render_announcements(
    items: Sequence[dict[str, Any]], *, year: int | None = None, program: str | None = None,
    next_page: str | None = None, now: datetime | None = None,
) -> str:
    """The page; `next_page` is the relative link to the following page, when there is one. An
    announcement whose notice runs at `now` carries the form to object to it."""
    head = "".join(f"<th scope=\"col\">{_e(zh)}<br><span lang=\"en\">{_e(en)}</span></th>" for zh, en in _COLUMNS)
    rows = []
    for item in items:
        status = str(item.get("status", ""))
        rows.append(
            f"<tr class=\"{_e(status)}\">"
            f"<td class=\"applicant\">{_e(item.get('applicant_name'))}</td>"
            f"<td class=\"program\">{_e(item.get('program'))}</td>"
            f"<td class=\"year\">{_e(item.get('year'))}</td>"
            f"<td class=\"subject\">{_e(item.get('subject'))}</td>"
            f"<td class=\"amount\">{_e(item.get('amount'))}</td>"
            f"<td class=\"published\"><time datetime=\"{_e(item.get('published_at'))}\">"
            f"{_e(_when(item.get('published_at')))}</time></td>"
            f"<td class=\"notice-ends\"><time datetime=\"{_e(item.get('notice_ends_at'))}\">"
            f"{_e(_when(item.get('notice_ends_at')))}</time></td>"
            f"<td class=\"status\">{_e(STATUS_LABELS.get(status, status))}</td>"
            f"<td class=\"objections\">{_objections_cell(item, now)}</td>"
            "</tr>"
        )
    body = (
        "".join(rows)
        if rows
        else f"<tr><td colspan=\"{len(_COLUMNS)}\">暂无公示 No announcements at present.</td></tr>"
    )
    filters = []
    if year is not None:
        filters.append(f"{_e(year)} 年度 / year {_e(year)}")
    if program:
        filters.append(f"项目 program {_e(program)}")
    scope = f"<p class=\"filters\">{' · '.join(filters)}</p>" if filters else ""
    more = f"<p class=\"more\"><a href=\"{_e(next_page)}\">下一页 Next page</a></p>" if next_page else ""
    return page(
        "资助公示 Public notice of grant awards",
        "<header><h1>资助公示 <span lang=\"en\">Public notice of grant awards</span></h1>"
        "<p class=\"lede\">以下拟资助项目在公示期内接受社会监督；公示期满无异议的，资助生效。"
        "如有异议，请在公示期内实名提出。"
        "<br><span lang=\"en\">The awards below are open to public scrutiny during the notice period; "
        "when it ends without objection, the award becomes final. Objections are accepted, under your "
        "real name, while the notice runs.</span></p></header>"
        f"<main>{scope}"
        "<table id=\"announcements\"><caption>公示名单 Awards under notice and final awards</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p class=\"count\">共 {len(items)} 项 · {len(items)} award(s)</p>{more}</main>",
    )


def _objections_cell(item: dict[str, Any], now: datetime | None) -> str:
    count = item.get("objections_open")
    shown = f"{_e(count)} 项待处理 <span lang=\"en\">open</span>" if count else ""
    form = objection_form(str(item["id"])) if _takes_objections(item, now) else ""
    return shown + form
