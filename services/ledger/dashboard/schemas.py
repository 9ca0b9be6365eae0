"""What the dashboard answers: its rows as data (the same dicts feed the HTML and the live
stream), the page as server-rendered HTML and a little vanilla JS. Pure: rows in, text out.

Every value goes through `_e` (html.escape, quotes included); the script builds live rows with
textContent only, never innerHTML, so a name carrying markup stays text on both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from services.ledger.dashboard.domain import (
    ApplicantHit,
    BatchLine,
    DecisionLine,
    OrderLine,
    PoolLine,
    RevocationLine,
)
from services.ledger.journal.domain import pool_account
from services.ledger.reviews.domain import PendingReview
from shared.kernel.money import format_fen
from shared.web.display import beijing_time, program_label, status_label, wan_yuan, yuan
from shared.web.staffpages import login_document, message_document, staff_document, staff_headers

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

NOTICES = {
    "revoked": "Award revoked.",
    "already-revoked": "That award was already revoked.",
    "reason-required": "A reason (1 to 500 characters) is required.",
    "not-revocable": "Nothing was awarded on that application: nothing to revoke.",
    "not-found": "No decision for that application.",
    "approved": "Award approved in full (核定).",
    "partially-approved": "Award approved in part (核定); the rest went back to every pool.",
    "rejected": "Award rejected; its hold went back to every pool.",
    "review-conflict": "That award is not pending review any more (reviewed or revoked meanwhile).",
    "amount-invalid": "The amount must be in yuan with at most two decimals, above 0.00 and not above the hold.",
}
SUCCESS_NOTICES = frozenset({"revoked", "approved", "partially-approved", "rejected"})


# Every dashboard response carries these.
HEADERS = staff_headers(CONTENT_SECURITY_POLICY)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def money(amount_fen: int) -> dict[str, str]:
    """What the page shows (万元/亿元, exact) and the exact yuan figure on hover (shared.web.display)."""
    return {"label": wan_yuan(amount_fen), "exact": yuan(amount_fen)}


def _money_cell(m: Mapping[str, str], cls: str) -> str:
    return f'<td class="{cls} amount" title="{_e(m["exact"])}">{_e(m["label"])}</td>'


# ---------------------------------------------------------------------------------------------
# Rows as data (the same dicts feed the HTML and the live stream)
# ---------------------------------------------------------------------------------------------


def pool_row(line: PoolLine) -> dict[str, Any]:
    b, k = line.balance, line.balance.key
    used = 0.0 if b.cap_fen == 0 else min(100.0, 100.0 * b.committed_fen / b.cap_fen)
    return {
        "account": pool_account(k), "pool": k.pool, "beneficiary": k.beneficiary, "name": line.name or "",
        "program": program_label(k.pool.split("/", 1)[0]) if "/" in k.pool else "",
        "scope": f"{k.year}" if k.subject is None else f"{'' if k.year is None else str(k.year) + ' · '}{k.subject}",
        "cap": money(b.cap_fen), "committed": money(b.committed_fen), "held": money(b.held_fen),
        "available": money(b.available_fen), "utilisation": round(used, 1),
    }


def decision_row(r: DecisionLine) -> dict[str, Any]:
    return {
        "seq": r.seq, "application_id": r.application_id, "time": beijing_time(r.recorded_for), "name": r.name or "",
        "beneficiary": r.beneficiary, "program": program_label(r.program), "program_code": r.program, "year": r.year,
        "subject": r.subject or "", "status": r.status, "status_label": status_label(r.status),
        "awarded": money(r.awarded_fen),
        "revocable": r.has_award and not r.revoked, "revoked": r.revoked,
    }


def hold_row(p: PendingReview) -> dict[str, Any]:
    """One award held for review, with what its reviewer weighs."""
    award, decision, basis = p.award, p.decision, p.basis
    requested = basis.requested_fen if basis is not None else None
    return {
        "application_id": award.application_id, "time": beijing_time(p.decided_at), "beneficiary": award.beneficiary,
        "name": (decision.applicant.name if decision.applicant else None) or "", "program": program_label(award.program),
        "year": p.year, "subject": p.subject, "entitlement": money(p.entitlement_fen),
        "requested": None if requested is None else money(requested), "held": money(award.amount_fen),
        "held_exact": format_fen(award.amount_fen), "top_up_of": award.top_up_of,
        "pools": [{"pool": b.key.pool, "cap": money(b.cap_fen), "available": money(b.available_fen),
                   "held": money(b.held_fen) if b.held_fen else None} for b in p.pools],
        "rules": [{"rule": r.rule, "passed": r.passed, "detail": r.detail, "citation": r.citation}
                  for r in (basis.rules if basis is not None else ())],
        "reasons": [{"code": r.code, "message": r.message, "citation": r.citation or ""} for r in decision.reasons],
    }


def revocation_row(r: RevocationLine) -> dict[str, Any]:
    return {
        "seq": r.journal_seq, "application_id": r.application_id, "time": beijing_time(r.revoked_at),
        "name": r.name or "", "beneficiary": r.beneficiary, "program": program_label(r.program),
        "amount": money(r.amount_fen),
        "reason": r.reason, "revoked_by": r.revoked_by,
    }


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

def _document(title: str, body: str, *, script: bool = False) -> str:
    return staff_document(title, body, head='<script src="/dashboard/app.js" defer></script>' if script else "")


def render_login(error: str | None = None) -> str:
    return login_document("Grantline ledger dashboard", "operators, reviewers and auditors", "/dashboard/login", error)


def render_message(title: str, message: str) -> str:
    return message_document(title, message, "/dashboard", "Back to the dashboard")


def _who(name: str, beneficiary: str) -> str:
    return f'<td class="applicant">{_e(name)}<small class="id">{_e(beneficiary)}</small></td>'


def _bar(utilisation: float) -> str:
    cls = "full" if utilisation >= 100 else "warn" if utilisation >= 80 else ""
    return (f'<td class="utilisation"><span class="bar {cls}"><span style="width: {utilisation:.1f}%"></span></span> '
            f'<span class="pct">{utilisation:.1f}%</span></td>')


def _pool_tr(p: Mapping[str, Any]) -> str:
    return (f'<tr data-account="{_e(p["account"])}">{_who(p["name"], p["beneficiary"])}'
            f'<td class="pool">{_e(p["pool"])}<small class="id">{_e(p.get("program", ""))}</small></td>'
            f'<td class="scope">{_e(p["scope"])}</td>'
            f'{_money_cell(p["cap"], "cap")}{_money_cell(p["committed"], "committed")}'
            f'{_money_cell(p["held"], "held")}{_money_cell(p["available"], "available")}{_bar(p["utilisation"])}</tr>')


def revoke_form(application_id: str, csrf: str) -> str:
    action = "/dashboard/awards/" + quote(application_id, safe="") + "/revoke"
    return (f'<form class="revoke" method="post" action="{_e(action)}">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            '<input name="reason" required maxlength="500" placeholder="reason / 撤销原因" aria-label="reason">'
            '<button type="submit">Revoke</button></form>')


def review_forms(h: Mapping[str, Any], csrf: str) -> str:
    """Approve (the held amount, or less) or reject, each with its reason."""
    action = _e("/dashboard/awards/" + quote(h["application_id"], safe="") + "/review")
    hidden = f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
    reason = '<input name="reason" required maxlength="500" placeholder="reason / 理由" aria-label="reason">'
    return (f'<form class="review approve" method="post" action="{action}">{hidden}'
            '<input type="hidden" name="decision" value="approve">'
            f'<input name="amount" inputmode="decimal" value="{_e(h["held_exact"])}" aria-label="amount (yuan)" '
            f'title="at most {_e(h["held_exact"])} 元">{reason}<button type="submit">Approve 核定</button></form>'
            f'<form class="review reject" method="post" action="{action}">{hidden}'
            f'<input type="hidden" name="decision" value="reject">{reason}'
            '<button type="submit">Reject 不予支持</button></form>')


def _hold_tr(h: Mapping[str, Any], csrf: str, can_review: bool) -> str:
    pools = "".join(f'<li>{_e(p["pool"])}: {_e(p["available"]["label"])} of {_e(p["cap"]["label"])} left'
                    f'{" (held " + _e(p["held"]["label"]) + ")" if p["held"] else ""}</li>'
                    for p in h["pools"])
    rules = "".join(f'<li class="{"passed" if r["passed"] else "failed"}">{_e(r["rule"])}: {_e(r["detail"])} '
                    f'<cite>{_e(r["citation"])}</cite></li>' for r in h["rules"])
    reasons = "".join(f'<li>{_e(r["code"])}: {_e(r["message"])} <cite>{_e(r["citation"])}</cite></li>'
                      for r in h["reasons"])
    requested = _money_cell(h["requested"], "requested") if h["requested"] else '<td class="requested amount">—</td>'
    top_up = f'<small class="id">top-up of {_e(h["top_up_of"])}</small>' if h["top_up_of"] else ""
    return (f'<tr data-app="{_e(h["application_id"])}"><td class="time">{_e(h["time"])}</td>'
            f'{_who(h["name"], h["beneficiary"])}<td class="program">{_e(h["program"])}'
            f'<small class="id">{_e(h["year"])}</small></td>'
            f'<td class="subject">{_e(h["subject"])}<small class="id">{_e(h["application_id"])}</small>{top_up}</td>'
            f'{_money_cell(h["entitlement"], "entitlement")}{requested}{_money_cell(h["held"], "held")}'
            f'<td class="pools"><ul>{pools}</ul></td>'
            f'<td class="rules"><details><summary>{len(h["rules"])} rules · 依据</summary><ul>{rules}</ul></details>'
            f'{f"<ul>{reasons}</ul>" if reasons else ""}</td>'
            f'<td class="action">{review_forms(h, csrf) if can_review else ""}</td></tr>')


def _decision_tr(d: Mapping[str, Any], csrf: str, can_revoke: bool = True) -> str:
    action = (revoke_form(d["application_id"], csrf) if d["revocable"] and can_revoke
              else ("revoked" if d["revoked"] else ""))
    return (f'<tr data-app="{_e(d["application_id"])}" data-seq="{_e(d["seq"])}">'
            f'<td class="time">{_e(d["time"])}</td>{_who(d["name"], d["beneficiary"])}'
            f'<td class="program">{_e(d["program"])}</td><td class="year">{_e(d["year"])}</td>'
            f'<td class="subject">{_e(d["subject"])}<small class="id">{_e(d["application_id"])}</small></td>'
            f'<td class="status {_e(d["status"])}">{_e(d["status_label"])}</td>'
            f'{_money_cell(d["awarded"], "awarded")}<td class="action">{action}</td></tr>')


def _revocation_tr(r: Mapping[str, Any]) -> str:
    return (f'<tr data-app="{_e(r["application_id"])}"><td class="time">{_e(r["time"])}</td>'
            f'{_who(r["name"], r["beneficiary"])}<td class="program">{_e(r["program"])}</td>'
            f'<td class="subject"><small class="id">{_e(r["application_id"])}</small></td>'
            f'{_money_cell(r["amount"], "amount")}<td class="reason">{_e(r["reason"])}</td>'
            f'<td class="by">{_e(r["revoked_by"])}</td></tr>')


def _options(values: Sequence[Any], selected: Any, blank: str) -> str:
    out = [f'<option value="">{_e(blank)}</option>']
    for v in values:
        sel = " selected" if str(v) == str(selected or "") else ""
        out.append(f'<option value="{_e(v)}"{sel}>{_e(v)}</option>')
    return "".join(out)


def batch_row(b: BatchLine) -> dict[str, Any]:
    return {
        "id": b.id, "status": b.status, "status_label": status_label(b.status),
        "program": program_label(b.program) if b.program else "全部 all", "year": b.year or "",
        "count": b.count, "control_sum": money(b.control_sum_fen),
        "created_by": b.created_by.get("name") or b.created_by.get("id", ""), "created_at": beijing_time(b.created_at),
        "approved_by": (b.approved_by or {}).get("name") or (b.approved_by or {}).get("id", ""),
        "sent_at": beijing_time(b.sent_at),
    }


def order_row(o: OrderLine) -> dict[str, Any]:
    return {
        "id": o.id, "application_id": o.application_id, "beneficiary": o.applicant_id, "name": o.name or "",
        "program": program_label(o.program), "year": o.year, "amount": money(o.amount_fen), "status": o.status,
        "status_label": status_label(o.status), "batch_id": o.batch_id or "", "time": beijing_time(o.updated_at),
    }


def applicant_row(a: ApplicantHit) -> dict[str, Any]:
    return {"beneficiary": a.beneficiary, "name": a.name or "", "decisions": a.decisions}


def _batch_tr(b: Mapping[str, Any]) -> str:
    return (f'<tr data-batch="{_e(b["id"])}"><td class="id">{_e(b["id"])}</td>'
            f'<td class="status {_e(b["status"])}">{_e(b["status_label"])}</td>'
            f'<td class="program">{_e(b["program"])}</td><td class="year">{_e(b["year"])}</td>'
            f'<td class="count">{_e(b["count"])}</td>{_money_cell(b["control_sum"], "control-sum")}'
            f'<td class="by">{_e(b["created_by"])}<small class="id">{_e(b["created_at"])}</small></td>'
            f'<td class="by">{_e(b["approved_by"])}</td><td class="time">{_e(b["sent_at"])}</td></tr>')


def _order_tr(o: Mapping[str, Any]) -> str:
    return (f'<tr data-order="{_e(o["id"])}"><td class="id">{_e(o["id"])}'
            f'<small class="id">{_e(o["application_id"])}</small></td>{_who(o["name"], o["beneficiary"])}'
            f'<td class="program">{_e(o["program"])}</td><td class="year">{_e(o["year"])}</td>'
            f'{_money_cell(o["amount"], "amount")}<td class="status {_e(o["status"])}">{_e(o["status_label"])}</td>'
            f'<td class="batch">{_e(o["batch_id"])}</td><td class="time">{_e(o["time"])}</td></tr>')


def _pager(name: str, query: Mapping[str, str], next_cursor: str | None) -> str:
    """A table's page links: back to its first page when on a later one, and on to the next."""
    links = []
    if query.get(name):
        first = {k: v for k, v in query.items() if k != name}
        links.append(f'<a href="/dashboard?{_e(urlencode(first))}" rel="first">« first page 首页</a>')
    if next_cursor:
        links.append(f'<a href="/dashboard?{_e(urlencode({**query, name: next_cursor}))}" rel="next" '
                     f'class="next">next page 下一页 »</a>')
    return f'<nav class="pager" data-for="{_e(name)}">{" · ".join(links)}</nav>' if links else ""


def _exports(query: Mapping[str, str], *, ledger: bool, payments: bool) -> str:
    filters = urlencode({k: v for k, v in query.items() if k in ("year", "program", "beneficiary") and v})
    suffix = f"?{filters}" if filters else ""
    kinds = ([("awards", "资助 Awards"), ("balances", "额度 Balances")] if ledger else []) + (
        [("payments", "支付 Payments")] if payments else [])
    if not kinds:
        return ""
    links = "".join(
        f'<li>{_e(label)}: <a href="/dashboard/exports/{kind}.xlsx{_e(suffix)}" id="export-{kind}-xlsx" download>XLSX</a>'
        f' · <a href="/dashboard/exports/{kind}.csv{_e(suffix)}" id="export-{kind}-csv" download>CSV</a></li>'
        for kind, label in kinds)
    return f'<section id="exports"><h2>Exports · 导出 (the filters above apply)</h2><ul>{links}</ul></section>'


def render_dashboard(
    *,
    pools: Sequence[Mapping[str, Any]],
    decisions: Sequence[Mapping[str, Any]],
    revocations: Sequence[Mapping[str, Any]],
    filters: Mapping[str, Any],
    programs: Sequence[str],
    years: Sequence[int],
    csrf: str,
    cursor: str,
    notice: str | None = None,
    notice_app: str | None = None,
    holds: Sequence[Mapping[str, Any]] = (),
    who: str = "operator",
    can_revoke: bool = True,
    can_review: bool = True,
    sees_activity: bool = True,
    nav: str = "",
    charts: Mapping[str, str] | None = None,
    chart_year: int | None = None,
    batches: Sequence[Mapping[str, Any]] = (),
    orders: Sequence[Mapping[str, Any]] = (),
    applicants: Sequence[Mapping[str, Any]] = (),
    search: str | None = None,
    next_cursors: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    sees_ledger: bool = True,
    sees_payments: bool = False,
    exports_payments: bool = False,
) -> str:
    nxt, q = next_cursors or {}, dict(query or {})
    message = ""
    if notice in NOTICES:
        cls = "notice" if notice in SUCCESS_NOTICES else "error"
        what = f" ({notice_app})" if notice_app else ""
        message = f'<p class="{cls}" role="status" id="notice">{_e(NOTICES[notice] + what)}</p>'
    live_query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    head = (
        f'{nav}<header><h1>Grantline ledger · 资金台账</h1>'
        f'<span class="who" id="who">{_e(who)}</span>'
        '<form method="post" action="/dashboard/logout">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}"><button type="submit">Sign out</button></form></header>'
    )
    program_options = ['<option value="">all</option>'] + [
        f'<option value="{_e(p)}"{" selected" if p == (filters.get("program") or "") else ""}>'
        f'{_e(program_label(p))} · {_e(p)}</option>' for p in programs]
    filter_form = (
        '<form class="filters" method="get" action="/dashboard" role="search">'
        f'<label>Year 年度<select name="year">{_options(years, filters.get("year"), "all")}</select></label>'
        f'<label>Program 项目<select name="program">{"".join(program_options)}</select></label>'
        '<label>Beneficiary 单位 (USCC)<input name="beneficiary" maxlength="40" '
        f'value="{_e(filters.get("beneficiary") or "")}"></label>'
        '<label>Search applicant 查找申请单位 (name or code 名称或代码)<input name="q" type="search" maxlength="60" '
        f'value="{_e(search or "")}" id="search"></label>'
        '<button type="submit">Filter 筛选</button> <a href="/dashboard">clear</a></form>'
    )
    found = ""
    if search:
        rows = "".join(
            f'<tr><td class="applicant"><a href="/dashboard?{_e(urlencode({"beneficiary": a["beneficiary"]}))}">'
            f'{_e(a["name"] or a["beneficiary"])}</a><small class="id">{_e(a["beneficiary"])}</small></td>'
            f'<td class="count">{_e(a["decisions"])}</td></tr>' for a in applicants)
        found = (f'<h2>Applicants matching “{_e(search)}” · 查找结果</h2>'
                 '<table id="applicants"><thead><tr><th>Applicant 申请单位 (USCC)</th><th>Decisions 决定数</th></tr>'
                 f'</thead><tbody>{rows or "<tr><td colspan=2>No applicant found · 未找到</td></tr>"}</tbody></table>'
                 f'{_pager("applicants_after", q, nxt.get("applicants_after"))}')
    chart_html = ""
    if charts:
        year_label = f"{chart_year} 年度" if chart_year is not None else ""
        chart_html = (
            '<section id="charts"><h2>Budget at a glance · 预算使用概览</h2>'
            f'<figure><figcaption>Pool utilisation against caps · 额度使用（{_e(year_label)}）</figcaption>'
            f'{charts.get("pools", "")}</figure>'
            '<figure><figcaption>Committed and paid per program, cumulative by month · 各项目已承诺与已支付（按月累计）'
            f'</figcaption>{charts.get("programs", "")}</figure>'
            f'<figure><figcaption>Call budgets used · 申报批次预算使用（{_e(year_label)}）</figcaption>'
            f'{charts.get("calls", "")}</figure></section>'
        )
    ledger_html = ""
    if sees_ledger:
        hold_rows = "".join(_hold_tr(h, csrf, can_review) for h in holds)
        pool_rows = "".join(_pool_tr(p) for p in pools)
        ledger_html = (
            '<h2>Review queue, oldest first · 待核定</h2>'
            '<table id="reviews"><thead><tr><th>Decided 决定时间</th><th>Applicant 申请单位</th><th>Program 项目</th>'
            '<th>Subject</th><th>Entitlement 测算</th><th>Requested 申请</th><th>Held 冻结</th><th>Pools 额度</th>'
            '<th>Rules 依据</th><th>Review 核定</th></tr></thead>'
            f'<tbody>{hold_rows}</tbody></table>{_pager("reviews_after", q, nxt.get("reviews_after"))}'
            '<h2>Pools, nearest exhaustion first · 额度使用</h2>'
            '<table id="pools"><thead><tr><th>Beneficiary 单位</th><th>Pool</th><th>Year / subject</th><th>Cap 上限</th>'
            '<th>Committed 已用</th><th>Held 冻结</th><th>Available 可用</th><th>Utilisation</th></tr></thead>'
            f'<tbody>{pool_rows}</tbody></table>{_pager("pools_after", q, nxt.get("pools_after"))}'
        )
    activity = ""
    if sees_activity:
        decision_rows = "".join(_decision_tr(d, csrf, can_revoke) for d in decisions)
        revocation_rows = "".join(_revocation_tr(r) for r in revocations)
        activity = (
            '<h2>Recent decisions · 最近决定</h2>'
            '<table id="decisions"><thead><tr><th>Time 时间</th><th>Applicant 申请单位</th><th>Program 项目</th>'
            '<th>Year</th><th>Subject</th><th>Status 状态</th><th>Awarded 金额</th><th>Action</th></tr></thead>'
            f'<tbody>{decision_rows}</tbody></table>{_pager("decisions_before", q, nxt.get("decisions_before"))}'
            '<h2>Recent revocations · 撤销记录</h2>'
            '<table id="revocations"><thead><tr><th>Time 时间</th><th>Applicant</th><th>Program 项目</th>'
            '<th>Application</th><th>Amount</th><th>Reason 原因</th><th>By</th></tr></thead>'
            f'<tbody>{revocation_rows}</tbody></table>'
            f'{_pager("revocations_before", q, nxt.get("revocations_before"))}'
        )
    payments_html = ""
    if sees_payments:
        payments_html = (
            '<h2 id="payments">Payment batches, newest first · 支付批次</h2>'
            '<table id="batches"><thead><tr><th>Batch 批次</th><th>Status 状态</th><th>Program 项目</th><th>Year</th>'
            '<th>Orders 笔数</th><th>Control sum 合计</th><th>Created by 创建</th><th>Second officer 复核</th>'
            '<th>Sent 发送时间</th></tr></thead>'
            f'<tbody>{"".join(_batch_tr(b) for b in batches)}</tbody></table>'
            f'{_pager("batches_before", q, nxt.get("batches_before"))}'
            '<h2>Payment orders · 支付指令</h2>'
            '<table id="orders"><thead><tr><th>Order 支付单</th><th>Applicant 申请单位</th><th>Program 项目</th>'
            '<th>Year</th><th>Amount 金额</th><th>Status 状态</th><th>Batch 批次</th><th>Updated 更新时间</th></tr>'
            f'</thead><tbody>{"".join(_order_tr(o) for o in orders)}</tbody></table>'
            f'{_pager("orders_after", q, nxt.get("orders_after"))}'
        )
    body = (
        f"{head}{message}{filter_form}"
        f'<p id="live" data-cursor="{_e(cursor)}" data-query="{_e(live_query)}" data-csrf="{_e(csrf)}" '
        f'data-can-revoke="{1 if can_revoke else 0}">live: connecting…</p>'
        f"{found}{chart_html}{ledger_html}{activity}{payments_html}"
        f"{_exports(q, ledger=sees_ledger, payments=exports_payments)}"
    )
    return _document("Grantline ledger dashboard", f"<main>{body}</main>", script=True)


# ---------------------------------------------------------------------------------------------
# The script (served from /dashboard/app.js, so the CSP can forbid inline script)
# ---------------------------------------------------------------------------------------------

APP_JS = r"""
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const csrf = live.dataset.csrf;
  const canRevoke = live.dataset.canRevoke === "1";
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
  const who = (name, id) => { const td = el("td", "applicant", name); td.appendChild(el("small", "id", id)); return td; };
  const moneyCell = (m, cls) => { const td = el("td", cls + " amount", m.label); td.title = m.exact; return td; };
  const fresh = (tr) => { tr.classList.add("fresh"); return tr; };

  function revokeForm(appId) {
    const f = el("form", "revoke"); f.method = "post";
    f.action = "/dashboard/awards/" + encodeURIComponent(appId) + "/revoke";
    const c = el("input"); c.type = "hidden"; c.name = "csrf"; c.value = csrf; f.appendChild(c);
    const r = el("input"); r.name = "reason"; r.required = true; r.maxLength = 500; r.placeholder = "reason / 撤销原因";
    r.setAttribute("aria-label", "reason"); f.appendChild(r);
    const b = el("button", null, "Revoke"); b.type = "submit"; f.appendChild(b);
    return f;
  }
  function decisionRow(d) {
    const tr = el("tr"); tr.dataset.app = d.application_id; tr.dataset.seq = d.seq;
    tr.appendChild(el("td", "time", d.time)); tr.appendChild(who(d.name, d.beneficiary));
    tr.appendChild(el("td", "program", d.program)); tr.appendChild(el("td", "year", d.year));
    const s = el("td", "subject", d.subject); s.appendChild(el("small", "id", d.application_id)); tr.appendChild(s);
    tr.appendChild(el("td", "status " + d.status, d.status_label)); tr.appendChild(moneyCell(d.awarded, "awarded"));
    const a = el("td", "action", d.revoked ? "revoked" : ""); if (d.revocable && canRevoke) a.appendChild(revokeForm(d.application_id));
    tr.appendChild(a); return fresh(tr);
  }
  function revocationRow(r) {
    const tr = el("tr"); tr.dataset.app = r.application_id;
    tr.appendChild(el("td", "time", r.time)); tr.appendChild(who(r.name, r.beneficiary));
    tr.appendChild(el("td", "program", r.program));
    const s = el("td", "subject"); s.appendChild(el("small", "id", r.application_id)); tr.appendChild(s);
    tr.appendChild(moneyCell(r.amount, "amount")); tr.appendChild(el("td", "reason", r.reason));
    tr.appendChild(el("td", "by", r.revoked_by)); return fresh(tr);
  }
  function poolRow(p) {
    const tr = el("tr"); tr.dataset.account = p.account;
    tr.appendChild(who(p.name, p.beneficiary)); tr.appendChild(el("td", "pool", p.pool)); tr.appendChild(el("td", "scope", p.scope));
    tr.appendChild(moneyCell(p.cap, "cap")); tr.appendChild(moneyCell(p.committed, "committed"));
    tr.appendChild(moneyCell(p.held, "held")); tr.appendChild(moneyCell(p.available, "available"));
    const u = el("td", "utilisation"); const bar = el("span", "bar" + (p.utilisation >= 100 ? " full" : p.utilisation >= 80 ? " warn" : ""));
    const fill = el("span"); fill.style.width = p.utilisation + "%"; bar.appendChild(fill); u.appendChild(bar);
    u.appendChild(document.createTextNode(" ")); u.appendChild(el("span", "pct", p.utilisation.toFixed(1) + "%"));
    tr.appendChild(u); return fresh(tr);
  }
  function prepend(tableId, tr, limit) {
    const body = document.querySelector("#" + tableId + " tbody"); if (!body) return; body.insertBefore(tr, body.firstChild);
    while (body.rows.length > limit) body.deleteRow(body.rows.length - 1);
  }
  function findRow(tableId, key, value) {
    for (const tr of document.querySelectorAll("#" + tableId + " tbody tr")) { if (tr.dataset[key] === value) return tr; }
    return null;
  }
  function onPool(p) {
    const old = findRow("pools", "account", p.account); const tr = poolRow(p);
    if (old) { old.replaceWith(tr); } else { prepend("pools", tr, 500); }
    const body = document.querySelector("#pools tbody"); if (!body) return;
    const rows = Array.from(body.rows).sort((a, b) => parseFloat(b.querySelector(".pct").textContent) - parseFloat(a.querySelector(".pct").textContent));
    rows.forEach((r) => body.appendChild(r));
  }
  const params = new URLSearchParams(live.dataset.query); params.set("cursor", live.dataset.cursor);
  const source = new EventSource("/dashboard/events?" + params.toString());
  source.addEventListener("open", () => { live.textContent = "live: connected"; });
  source.addEventListener("error", () => { live.textContent = "live: reconnecting…"; });
  source.addEventListener("decision", (e) => {
    const d = JSON.parse(e.data); const old = findRow("decisions", "app", d.application_id);
    if (old) old.remove(); prepend("decisions", decisionRow(d), 100);
  });
  source.addEventListener("revocation", (e) => {
    const r = JSON.parse(e.data); if (!findRow("revocations", "app", r.application_id)) prepend("revocations", revocationRow(r), 100);
    const d = findRow("decisions", "app", r.application_id);
    if (d) { const a = d.querySelector("td.action"); a.textContent = "revoked"; }
  });
  source.addEventListener("pool", (e) => onPool(JSON.parse(e.data)));
  source.addEventListener("bye", () => { source.close(); live.textContent = "live: session ended, reload to sign in"; });
})();
"""
