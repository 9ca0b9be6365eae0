"""The benchmark report's pure helpers (percentiles, ratios, the table); no timing asserted."""

from __future__ import annotations

import pytest

from tools.bench.report import Row, percentile, ratio, render_table


def test_percentile_interpolates_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_none_and_range_is_checked() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_guards_missing_and_zero_baselines() -> None:
    assert ratio(10, 4) == 2.5
    assert ratio(None, 4) is None
    assert ratio(1, 0) is None


def test_table_has_one_line_per_row_and_marks_unmet_goals() -> None:
    table = render_table([
        Row("a", 1234.5, "/s", 100.0, "base/s", 12.345, ">= 5x", True),
        Row("b", None, goal="equal", met=False),
    ])
    lines = table.splitlines()
    assert len(lines) == 4
    assert "1,234 /s" in lines[2] and "12.35x" in lines[2] and lines[2].endswith("yes")
    assert "n/a" in lines[3] and lines[3].endswith("NO")
