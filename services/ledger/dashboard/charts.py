"""The dashboard's charts, drawn on the server as inline SVG (drawsvg): no script, no build step,
nothing loaded, so the page's CSP (no inline script, no images) holds and a chart reads without
JavaScript. Pure: data in, SVG text out. Each bar and point carries a <title> with the exact yuan
(shown on hover and read by screen readers); the SVG has role="img" and an aria-label.

drawsvg escapes text content but writes attribute values as given: every attribute built from
data goes through `_attr`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import drawsvg as dw

from services.ledger.dashboard.domain import CallBudget, PoolUsage, ProgramMonth
from shared.web.display import program_label, wan_yuan, yuan

WIDTH = 760
FONT = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
GREEN, ORANGE, RED, TRACK, HELD, GREY = "#2e7d32", "#ef8f00", "#c62828", "#e8eef5", "#90caf9", "#555"
# Distinguishable on white and for the common colour blindnesses (Okabe-Ito).
SERIES = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")
POOLS_MAX = 40  # bars in the utilisation chart (the pools table lists every pool)
CALLS_MAX = 20


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _drawing(height: int, label: str, chart_id: str) -> dw.Drawing:
    return dw.Drawing(WIDTH, height, id_prefix=chart_id, id=chart_id, role="img", aria_label=_attr(label),
                      class_="chart", font_family=_attr(FONT), font_size=12,
                      style="max-width:100%;height:auto;display:block")


def _svg(d: dw.Drawing) -> str:
    return str(d.as_svg(header="", skip_js=True))


def _pct(used_fen: int, cap_fen: int) -> float:
    return 0.0 if cap_fen <= 0 else 100.0 * used_fen / cap_fen


def _fill(utilisation: float) -> str:
    return RED if utilisation >= 100 else ORANGE if utilisation >= 80 else GREEN


def _empty(d: dw.Drawing, message: str) -> str:
    d.append(dw.Text(message, 13, 12, 28, fill=GREY))
    return _svg(d)


def pool_usage_chart(rows: Sequence[PoolUsage], year: int | None) -> str:
    """Every pool of `year` against its cap: one bar per pool (its instances summed: every
    beneficiary's beneficiary-year pool, every subject's), committed over cap (green, orange from
    80%, red when full), the part held for review in light blue."""
    shown = list(rows[:POOLS_MAX])
    label = f"额度使用 Pool utilisation {year or ''}".strip()
    row_h, top, left, bar_w = 34, 8, 230, 270
    d = _drawing(top * 2 + max(1, len(shown)) * row_h, label, "chart-pools")
    if not shown:
        return _empty(d, "No pools for this year · 本年度暂无额度")
    for i, p in enumerate(shown):
        y = top + i * row_h
        used = _pct(p.committed_fen, p.cap_fen)
        scope = "每事项 per subject" if p.year is None else f"{p.year}"
        d.append(dw.Text(p.pool, 12, 0, y + 14))
        d.append(dw.Text(f"{scope} · {p.instances} 个 pools", 10, 0, y + 27, fill=GREY))
        d.append(dw.Rectangle(left, y + 4, bar_w, 16, fill=TRACK, rx=2))
        fill_w = bar_w * min(used, 100.0) / 100
        held_w = bar_w * min(_pct(p.held_fen, p.cap_fen), 100.0) / 100
        bar = dw.Rectangle(left, y + 4, fill_w, 16, fill=_fill(used), rx=2, class_="used")
        bar.append_title(f"{p.pool} ({scope}): 已用 committed {yuan(p.committed_fen)} / 上限 cap {yuan(p.cap_fen)} "
                         f"({used:.1f}%), 冻结 held {yuan(p.held_fen)}")
        d.append(bar)
        if held_w:
            d.append(dw.Rectangle(left + max(0.0, fill_w - held_w), y + 4, held_w, 16, fill=HELD, opacity=0.7))
        d.append(dw.Text(f"{wan_yuan(p.committed_fen)} / {wan_yuan(p.cap_fen)} · {used:.1f}%", 12,
                         left + bar_w + 8, y + 16))
    return _svg(d)


def program_months_chart(points: Sequence[ProgramMonth]) -> str:
    """Committed (solid) and paid (dashed) per program, cumulative, by month in Beijing time."""
    months = sorted({p.month for p in points})
    programs = sorted({p.program for p in points})
    legend_h = 18 * len(programs)
    left, top, plot_w, plot_h = 80, 12, WIDTH - 100, 220
    d = _drawing(top + plot_h + 40 + legend_h + 8, "已承诺与已支付 Committed and paid per program, by month",
                 "chart-programs")
    if not points:
        return _empty(d, "Nothing committed yet · 暂无承诺金额")
    series: dict[tuple[str, str], list[int]] = {}
    for program in programs:
        for kind in ("committed", "paid"):
            monthly = {p.month: p.committed_fen if kind == "committed" else p.paid_fen
                       for p in points if p.program == program}
            total, running = 0, []
            for m in months:
                total += monthly.get(m, 0)
                running.append(total)
            series[(program, kind)] = running
    top_fen = max(max(v) for v in series.values()) or 1
    scale = _nice(top_fen)

    def x(i: int) -> float:
        return left + (plot_w * i / (len(months) - 1) if len(months) > 1 else plot_w / 2)

    def y(fen: int) -> float:
        return top + plot_h - plot_h * fen / scale

    for t in range(5):
        fen = scale * t // 4
        d.append(dw.Line(left, y(fen), left + plot_w, y(fen), stroke="#ddd"))
        d.append(dw.Text(wan_yuan(fen) if fen else "0", 11, left - 6, y(fen) + 4, text_anchor="end", fill=GREY))
    step = max(1, len(months) // 8)
    for i, m in enumerate(months):
        if i % step == 0 or i == len(months) - 1:
            d.append(dw.Text(m, 11, x(i), top + plot_h + 16, text_anchor="middle", fill=GREY))
    for n, program in enumerate(programs):
        colour = SERIES[n % len(SERIES)]
        for kind, dash in (("committed", None), ("paid", "5 4")):
            values = series[(program, kind)]
            if not any(values):
                continue
            coords = [c for i, v in enumerate(values) for c in (x(i), y(v))]
            extra = {"stroke_dasharray": dash} if dash else {}
            d.append(dw.Lines(*coords, close=False, stroke=colour, stroke_width=2, fill="none", **extra))
            for i, v in enumerate(values):
                dot = dw.Circle(x(i), y(v), 3.5, fill=colour, class_=f"point {kind}")
                dot.append_title(f"{program_label(program)} {months[i]} {'已承诺 committed' if kind == 'committed' else '已支付 paid'}"
                                 f" {wan_yuan(v)} ({yuan(v)})")
                d.append(dot)
        ly = top + plot_h + 34 + n * 18
        d.append(dw.Line(left, ly - 4, left + 24, ly - 4, stroke=colour, stroke_width=2))
        d.append(dw.Line(left + 30, ly - 4, left + 54, ly - 4, stroke=colour, stroke_width=2, stroke_dasharray="5 4"))
        d.append(dw.Text(f"{program_label(program)} · 已承诺 committed / 已支付 paid", 12, left + 62, ly))
    return _svg(d)


def call_budget_chart(calls: Sequence[CallBudget]) -> str:
    """Each call's budget: approved (committed less held), held for review, and what is left."""
    shown = list(calls[:CALLS_MAX])
    row_h, top, left, bar_w = 30, 8, 280, 300
    d = _drawing(top * 2 + max(1, len(shown)) * row_h + 20, "申报批次预算 Call budgets used", "chart-calls")
    if not shown:
        return _empty(d, "No call with a budget · 暂无设预算的申报批次")
    for i, c in enumerate(shown):
        y = top + i * row_h
        approved = c.committed_fen - c.held_fen
        name = f"{c.call_id} · {c.year}" if c.year is not None else c.call_id
        d.append(dw.Text(name, 12, 0, y + 13))
        if c.program:
            d.append(dw.Text(program_label(c.program), 10, 0, y + 26, fill=GREY))
        d.append(dw.Rectangle(left, y + 5, bar_w, 16, fill=TRACK, rx=2))
        x0: float = left
        for part, fen, colour in (("已核准 approved", approved, GREEN), ("冻结 held", c.held_fen, HELD)):
            w: float = bar_w * min(max(fen, 0) / c.cap_fen, 1.0) if c.cap_fen > 0 else 0
            if w:
                seg = dw.Rectangle(x0, y + 5, w, 16, fill=colour, class_="call-part")
                seg.append_title(f"{name} {part}: {yuan(fen)} / 预算 budget {yuan(c.cap_fen)}")
                d.append(seg)
                x0 += w
        used = _pct(c.committed_fen, c.cap_fen)
        d.append(dw.Text(f"{wan_yuan(c.committed_fen)} / {wan_yuan(c.cap_fen)} · {used:.1f}%", 12,
                         left + bar_w + 8, y + 17))
    ly = top + len(shown) * row_h + 12
    for k, (part, colour) in enumerate((("已核准 approved", GREEN), ("冻结 held", HELD), ("可用 available", TRACK))):
        d.append(dw.Rectangle(left + k * 120, ly - 9, 12, 12, fill=colour))
        d.append(dw.Text(part, 11, left + k * 120 + 16, ly + 1))
    return _svg(d)


def _nice(top_fen: int) -> int:
    """A round axis top at or above `top_fen`: 1, 2 or 5 times a power of ten (in fen)."""
    magnitude = 1
    while magnitude * 10 <= top_fen:
        magnitude *= 10
    for m in (1, 2, 5, 10):
        if m * magnitude >= top_fen:
            return m * magnitude
    return 10 * magnitude
