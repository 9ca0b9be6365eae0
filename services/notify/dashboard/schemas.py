"""What the objections page answers: server-rendered HTML in the staff pages' look, no script.
Pure: objections in (as `GET /v1/objections` shows them), text out. Every value goes through `_e`
(html.escape, quotes included), so a statement or a name carrying markup stays text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from services.notify.dashboard.domain import PAGE_PATH, STATUSES
from shared.web.display import beijing_time, program_label, status_label
from shared.web.staffpages import login_document, message_document, staff_document, staff_headers

# The page runs no script and loads nothing; its forms post only to itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = staff_headers(CONTENT_SECURITY_POLICY)

# Chinese first, the API's code beside it (shared.web.display, as every page).
STATUS_LABELS = {**{s: status_label(s) for s in ("open", "upheld", "dismissed")}, "all": "全部 all"}

NOTICES = {
    "upheld": "Objection upheld (异议成立): the ledger revokes the award and the partner is told.",
    "dismissed": "Objection dismissed (异议不成立).",
    "dismissed-final": "Objection dismissed (异议不成立); the notice had ended, so the award is final now.",
    "resolved-already": "That objection was resolved already.",
    "not-found": "No such objection.",
    "reason-required": "A reason (1 to 2000 characters) is required.",
    "outcome-required": "Choose whether the objection is upheld or dismissed.",
}
SUCCESS_NOTICES = frozenset({"upheld", "dismissed", "dismissed-final"})


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_login(error: str | None = None) -> str:
    return login_document("Grantline objections · 异议处理", "reviewers, operators and auditors", "/staff/login", error)


def render_message(title: str, message: str) -> str:
    return message_document(title, message, PAGE_PATH, "Back to the objections")


def resolve_form(objection_id: str, csrf: str) -> str:
    """Uphold (the ledger then revokes the award) or dismiss, with the reason recorded and sent to the partner."""
    action = PAGE_PATH + "/" + quote(objection_id, safe="") + "/resolve"
    return (f'<form class="resolve" method="post" action="{_e(action)}">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            '<select name="outcome" required aria-label="outcome"><option value="">choose 选择…</option>'
            '<option value="dismissed">Dismiss 异议不成立</option>'
            '<option value="upheld">Uphold 异议成立 (revokes the award)</option></select>'
            '<input name="reason" required maxlength="2000" placeholder="reason / 处理理由" aria-label="reason">'
            '<button type="submit">Resolve 处理</button></form>')


def _objector(o: Mapping[str, Any], sees_objector: bool) -> str:
    if not sees_objector:
        return '<td class="objector"><span class="private">shown to reviewers only 仅审核人员可见</span></td>'
    organisation = f'<small class="id">{_e(o["organisation"])}</small>' if o.get("organisation") else ""
    return (f'<td class="objector"><span class="name">{_e(o["name"])}</span>{organisation}'
            f'<small class="id contact">{_e(o["contact"])}</small></td>')


def _status(o: Mapping[str, Any]) -> str:
    resolution = o.get("resolution")
    if not resolution:
        return f'<td class="status open">{_e(STATUS_LABELS["open"])}</td>'
    by = resolution["by"]
    who = f'{by["name"]} ({by["id"]})' if by.get("name") else by["id"]
    return (f'<td class="status {_e(o["status"])}">{_e(STATUS_LABELS.get(o["status"], o["status"]))}'
            f'<small class="id reason">{_e(resolution["reason"])}</small>'
            f'<small class="id by">{_e(who)} · {_when(resolution["at"])}</small></td>')


def _when(iso: str | None) -> str:
    """Beijing time to the minute, the exact instant in the element (and on hover)."""
    if not iso:
        return ""
    return f'<time datetime="{_e(iso)}" title="{_e(iso)}">{_e(beijing_time(iso))}</time>'


def _objection_tr(o: Mapping[str, Any], csrf: str, *, resolves: bool, sees_objector: bool) -> str:
    action = resolve_form(o["id"], csrf) if resolves and o["status"] == "open" else ""
    return (f'<tr data-objection="{_e(o["id"])}" data-app="{_e(o["application_id"])}">'
            f'<td class="time">{_when(o["filed_at"])}<small class="id">{_e(o["id"])}</small></td>'
            f'<td class="award"><span class="applicant">{_e(o["applicant_name"])}</span>'
            f'<small class="program">{_e(program_label(o["program"]))}</small>'
            f'<small class="id">{_e(o["program"])} · {_e(o["year"])}年度 · {_e(o["subject"])}</small>'
            f'<small class="id">{_e(o["application_id"])} · {_e(o["announcement_id"])}</small></td>'
            f'<td class="statement">{_e(o["statement"])}</td>{_objector(o, sees_objector)}{_status(o)}'
            f'<td class="action">{action}</td></tr>')


def _status_nav(current: str) -> str:
    here = ' aria-current="page"'
    links = "".join(
        f'<a href="{PAGE_PATH}?status={s}"{here if s == current else ""}>{_e(STATUS_LABELS[s])}</a>' for s in STATUSES
    )
    return f'<nav class="status" aria-label="status">{links}</nav>'


def render_objections(
    *,
    objections: Sequence[Mapping[str, Any]],
    status: str,
    next_cursor: str | None,
    csrf: str,
    who: str,
    nav: str,
    resolves: bool,
    sees_objector: bool,
    notice: str | None = None,
    notice_objection: str | None = None,
) -> str:
    """The page: who is signed in, the notice of what was just done, the objections with `status`
    (oldest first) and, for a reviewer, a form to resolve each open one."""
    message = ""
    if notice in NOTICES:
        cls = "notice" if notice in SUCCESS_NOTICES else "error"
        what = f" ({notice_objection})" if notice_objection else ""
        message = f'<p class="{cls}" role="status" id="notice">{_e(NOTICES[notice] + what)}</p>'
    head = (
        f'{nav}<header><h1>Grantline objections · 异议处理</h1><span class="who" id="who">{_e(who)}</span>'
        '<form method="post" action="/staff/logout">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}"><button type="submit">Sign out</button></form></header>'
    )
    rows = "".join(_objection_tr(o, csrf, resolves=resolves, sees_objector=sees_objector) for o in objections)
    empty = "" if rows else '<p id="none">No objections here. 暂无异议。</p>'
    more = ""
    if next_cursor is not None:
        more = (f'<p class="more"><a href="{_e(PAGE_PATH + "?" + urlencode({"status": status, "cursor": next_cursor}))}">'
                "Next page 下一页</a></p>")
    body = (
        f"{head}{message}{_status_nav(status)}"
        '<h2>Objections to awards under notice, oldest first · 公示异议</h2>'
        '<table id="objections"><caption>异议 Objections · 北京时间 Beijing time</caption><thead><tr>'
        '<th scope="col">Filed 提出时间</th><th scope="col">Award 公示项目</th><th scope="col">Statement 异议内容</th>'
        '<th scope="col">Objector 异议人</th><th scope="col">Status 状态</th><th scope="col">Resolve 处理</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{empty}{more}"
    )
    return staff_document("Grantline objections", f"<main>{body}</main>")
