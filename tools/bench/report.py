"""Pure helpers for the benchmark report: percentiles, ratios and the printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) of already sorted values, linear between ranks; None when empty."""
    if not sorted_values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile out of range: {p}")
    rank = (len(sorted_values) - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    if lo == hi:
        return float(sorted_values[lo])
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo))


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


@dataclass
class Row:
    figure: str
    value: float | bool | str | None
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None


def _num(v: float | bool | str | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, str):
        return v
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
    return f"{text} {unit}".strip()


def _ratio_text(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def render_table(rows: Sequence[Row]) -> str:
    header = ("figure", "value", "baseline (same run)", "ratio", "goal", "met?")
    cells = [
        (
            r.figure,
            _num(r.value, r.unit),
            f"{_num(r.baseline)} {r.baseline_label}".strip() if r.baseline is not None or r.baseline_label else "",
            _ratio_text(r.ratio),
            r.goal,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(out)
