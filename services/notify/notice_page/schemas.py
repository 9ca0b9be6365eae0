"""What the 公示 page answers: plain HTML, Chinese first with English beside, every value escaped
(`_e`), no script. Pure: the page's data in, text out. Times are Beijing time to the minute
(with the exact instant in each <time datetime>), amounts in 万元 with the exact yuan beside,
programs by their Chinese name and 文号 (shared.web.display, as every page)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from services.notify.notice_page.domain import (
    DEFAULT_PAGE_SIZE,
    OPEN_DATA_PATH,
    PAGE_PATH,
    PAGE_SIZES,
    Filters,
    Group,
    NoticePage,
    inclusion_proof_path,
    takes_objections,
)
from services.notify.schemas import objection_form, page
from shared.kernel.money import AmountError, parse_amount
from shared.web.display import STATUSES, beijing_time, money_html, program_label, program_name, yuan

TITLE = "资助公示 Public notice of grant awards"
LEDE_EN = (
    "The awards below are open to public scrutiny during the notice period; when it ends without objection, "
    "the award becomes final. Objections are accepted, under your real name, while the notice runs. "
    "Times are Beijing time (UTC+8)."
)

# Chinese first, the API's status code beside it (as display.status_label writes statuses).
STATUS_TEXT = {"under_notice": f"{STATUSES['announced']} under_notice", "final": f"{STATUSES['final']} final"}
STATUS_OPTIONS = (("", "全部状态 All"), ("under_notice", "公示中 Under notice"), ("final", "已确定 Final"))

_COLUMNS = (
    ("申请单位", "Applicant"),
    ("事项", "Subject"),
    ("资助金额", "Amount"),
    ("公示时间（北京时间）", "Published (Beijing time)"),
    ("公示截止（北京时间）", "Notice ends (Beijing time)"),
    ("状态", "Status"),
    ("异议", "Objections"),
    ("透明日志", "Log index"),
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _en(text: str) -> str:
    return f'<span lang="en">{_e(text)}</span>'


def page_link(filters: Filters, limit: int, cursor: str | None = None) -> str:
    """The page's own address for these filters (and the page after `cursor`)."""
    query: dict[str, str] = filters.query()
    if limit != DEFAULT_PAGE_SIZE:
        query["limit"] = str(limit)
    if cursor is not None:
        query["cursor"] = cursor
    # Relative to the page itself ("?…"): the same path however the page is mounted.
    return "?" + urlencode(query) if query else PAGE_PATH


def _time(iso: str | None) -> str:
    if not iso:
        return ""
    return f'<time datetime="{_e(iso)}">{_e(beijing_time(iso))}</time>'


def _fen(item: Mapping[str, Any]) -> int:
    if isinstance(item.get("amount_fen"), int):
        return int(item["amount_fen"])
    try:
        return parse_amount(item.get("amount"))
    except AmountError:
        return 0


def _status_cell(item: Mapping[str, Any], now: datetime) -> str:
    status = str(item.get("status", ""))
    if status == "final":
        when = item.get("finalized_at")
        since = f'<small>确定于 {_en("final since")} {_time(when)}</small>' if when else ""
        return f'<td class="status"><strong class="badge final">✓ {_e(STATUS_TEXT["final"])}</strong>{since}</td>'
    ended = "" if takes_objections(item, now) else (
        f'<small>公示期满，待确定 {_en("notice ended, not yet final")}</small>'
    )
    return f'<td class="status"><span class="badge running">{_e(STATUS_TEXT.get(status, status))}</span>{ended}</td>'


def _objections_cell(item: Mapping[str, Any], now: datetime) -> str:
    count = item.get("objections_open") or 0
    shown = f'<span class="open-objections">{_e(count)} 项待处理 {_en("open")}</span>' if count else ""
    if takes_objections(item, now):
        return f'<td class="objections">{shown}{objection_form(str(item["id"]))}</td>'
    return f'<td class="objections">{shown or "—"}</td>'


def _log_cell(item: Mapping[str, Any], log_size: int) -> str:
    index = item.get("log_index")
    if index is None:
        return '<td class="log">—</td>'
    proof = inclusion_proof_path(int(index), log_size)
    label = f"#{_e(index)}"
    if proof is None:
        return f'<td class="log">{label}</td>'
    return (f'<td class="log"><a href="{_e(proof)}" title="包含证明 inclusion proof" '
            f'aria-label="透明日志第 {_e(index)} 条的包含证明 inclusion proof of log entry {_e(index)}">{label}</a></td>')


def _row(item: Mapping[str, Any], now: datetime, log_size: int) -> str:
    status = str(item.get("status", ""))
    fen = _fen(item)
    return (
        f'<tr class="{_e(status)}" data-announcement="{_e(item.get("id"))}">'
        f'<th scope="row" class="applicant">{_e(item.get("applicant_name"))}</th>'
        f'<td class="subject">{_e(item.get("subject"))}</td>'
        f'<td class="amount">{money_html(fen)}<small class="exact">{_e(yuan(fen))}</small></td>'
        f'<td class="published">{_time(item.get("published_at"))}</td>'
        f'<td class="notice-ends">{_time(item.get("notice_ends_at"))}</td>'
        f"{_status_cell(item, now)}{_objections_cell(item, now)}{_log_cell(item, log_size)}"
        "</tr>"
    )


def _group_name(group: Group) -> tuple[str, str]:
    """The group's name after its program, Chinese and English: the call's title; for a call whose
    title is not known here (yet), its support year and id; without a call, its support year."""
    if group.call_id is None:
        return f'<span class="year">{_e(group.year)}年度</span>', f"support year {group.year}"
    if group.call_title:
        return (f'<span class="call">{_e(group.call_title)}</span>',
                f"call {group.call_id} · support year {group.year}")
    return (f'<span class="year">{_e(group.year)}年度</span> <span class="call">申报批次 {_e(group.call_id)}</span>',
            f"call {group.call_id} · support year {group.year}")


def _group(group: Group, index: int, now: datetime, log_size: int) -> str:
    continued = f' <small>（续上页 {_en("continued")}）</small>' if group.continued else ""
    name, name_en = _group_name(group)
    head = (
        f'<tr class="group"><th scope="rowgroup" colspan="{len(_COLUMNS)}" id="group-{index}">'
        f'<span class="program">{_e(program_label(group.program))}</span> · {name}{continued}'
        f'<br><small>{_en(f"{group.program} · {name_en}")}</small></th></tr>'
    )
    rows = "".join(_row(item, now, log_size) for item in group.items)
    call = f' data-call="{_e(group.call_id)}"' if group.call_id is not None else ""
    return (f'<tbody data-program="{_e(group.program)}" data-year="{_e(group.year)}"{call}>'
            f"{head}{rows}</tbody>")


def _select(name: str, zh: str, en: str, options: list[tuple[str, str]], selected: str) -> str:
    chosen = ' selected'
    opts = "".join(
        f'<option value="{_e(value)}"{chosen if value == selected else ""}>{_e(label)}</option>'
        for value, label in options
    )
    return (f'<label for="filter-{name}">{_e(zh)} {_en(en)}</label>'
            f'<select id="filter-{name}" name="{name}">{opts}</select>')


def _filters_form(p: NoticePage) -> str:
    f = p.filters
    years = [("", "全部年度 All years")] + [(str(y), f"{y}年度") for y in p.years]
    programs = [("", "全部项目 All programs")] + [(code, program_label(code)) for code in p.programs]
    sizes = [(str(n), f"每页 {n} 项") for n in PAGE_SIZES]
    if p.limit not in PAGE_SIZES:
        sizes.append((str(p.limit), f"每页 {p.limit} 项"))
    return (
        f'<form class="filters" method="get" action="{PAGE_PATH}" role="search" aria-label="筛选 Filter">'
        + _select("year", "年度", "Year", years, "" if f.year is None else str(f.year))
        + _select("program", "项目", "Program", programs, f.program or "")
        + _select("status", "状态", "Status", list(STATUS_OPTIONS), f.status or "")
        + _select("limit", "每页", "Per page", sizes, str(p.limit))
        + f'<button type="submit">筛选 {_en("Filter")}</button>'
        + f' <a href="{PAGE_PATH}">清除筛选 {_en("Clear")}</a></form>'
    )


def _scope(f: Filters) -> str:
    shown = []
    if f.year is not None:
        shown.append(f"{_e(f.year)}年度 {_en(f'year {f.year}')}")
    if f.program:
        shown.append(f"{_e(program_name(f.program))} {_en(f.program)}")
    if f.status:
        shown.append(_e(STATUS_TEXT[f.status]))
    return f'<p class="scope">当前筛选 {_en("Showing")}: {" · ".join(shown)}</p>' if shown else ""


def render_notice_page(p: NoticePage, *, now: datetime) -> str:
    """The page: the lede, the filters, the groups of this page, the links to the next and the
    first page, and the open data and the log."""
    head = "".join(f'<th scope="col">{_e(zh)}<br>{_en(en)}</th>' for zh, en in _COLUMNS)
    if p.groups:
        body = "".join(_group(g, i, now, p.log_size) for i, g in enumerate(p.groups))
    else:
        body = (f'<tbody><tr><td colspan="{len(_COLUMNS)}" class="none">暂无公示 '
                f'{_en("No announcements at present.")}</td></tr></tbody>')
    pages = []
    if p.continues:
        pages.append(f'<a href="{_e(page_link(p.filters, p.limit))}">第一页 {_en("First page")}</a>')
    if p.next_cursor is not None:
        # The shape tests and people follow: <a href="…">下一页 Next page</a>
        pages.append(f'<a href="{_e(page_link(p.filters, p.limit, p.next_cursor))}">下一页 Next page</a>')
    nav = f'<nav class="pages" aria-label="分页 Pages"><p class="more">{" · ".join(pages)}</p></nav>' if pages else ""
    return page(
        TITLE,
        f'<header><h1>资助公示 {_en("Public notice of grant awards")}</h1>'
        '<p class="lede">以下拟资助项目在公示期内接受社会监督；公示期满无异议的，资助确定。'
        "如有异议，请在公示期内实名提出。时间均为北京时间。"
        f"<br>{_en(LEDE_EN)}</p></header>"
        f"<main>{_filters_form(p)}{_scope(p.filters)}"
        '<table id="announcements"><caption>公示名单：按资助项目及申报批次分组 '
        f'{_en("Awards under notice and final awards, by program and call")}</caption>'
        f"<thead><tr>{head}</tr></thead>{body}</table>"
        f'<p class="count">本页 {p.count} 项 {_en(f"{p.count} award(s) on this page")}</p>{nav}'
        '<section class="open-data" aria-labelledby="open-data-title">'
        f'<h2 id="open-data-title">开放数据 {_en("Open data")}</h2>'
        f'<p><a href="{OPEN_DATA_PATH}" download>已确定资助名单（CSV，UTF-8）{_en("Final awards (CSV, UTF-8)")}</a>'
        ' · <a href="/v1/transparency/checkpoint">透明日志检查点 '
        f'{_en("Transparency log checkpoint")}</a></p></section></main>',
    )


def render_refused(detail: str) -> str:
    """A page link that no longer holds (a cursor this page did not hand out)."""
    return page(
        "链接无效 Not a page of this notice",
        f'<main><h1>链接无效 {_en("Not a page of this notice")}</h1>'
        f'<p lang="en">{_e(detail)}</p>'
        f'<p><a href="{PAGE_PATH}">返回公示 {_en("Back to the notice")}</a></p></main>',
    )
