"""Exports at 100,000 award rows: the XLSX (XlsxWriter, constant_memory, as the ledger writes it)
next to the same rows as CSV, rows/s for each, with tracemalloc's peak and the process's peak RSS
while writing the XLSX (flat: the rows come from a generator a page at a time, as from the
database, and each row is flushed to disk as it is written).

    python -m tools.bench.exports_bench [n]

`run_exports_bench(n)` returns the figures, keys prefixed `exports_` (for `make bench`).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.ledger.exports.domain import AWARD_COLUMNS, PAGE_ROWS, Row
from services.ledger.exports.schemas import csv_header, csv_lines, write_xlsx


def _award(i: int) -> Row:
    return (f"app_{i:016x}", "上海某某生物科技有限公司", f"9131{i:014d}", "基因治疗企业股权融资资助（沪科规〔2023〕10号）",
            "GT-EQUITY", 2024, f"ROUND-{i}", 100_000_00 + i * 7, "有效 live", "2024-06-01 17:00", "", "", "")


def _pages(n: int) -> Iterator[list[Row]]:
    for start in range(0, n, PAGE_ROWS):
        yield [_award(i) for i in range(start, min(n, start + PAGE_ROWS))]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_exports_bench(n: int = 100_000) -> dict[str, Any]:
    out: dict[str, Any] = {"exports_rows": n}
    with tempfile.TemporaryDirectory(prefix="grantline-exports-bench-") as tmp:
        xlsx = Path(tmp) / "awards.xlsx"
        rss_before = _rss_bytes()
        rss_max = [rss_before]

        def sampled() -> Iterator[list[Row]]:
            for page in _pages(n):
                rss_max[0] = max(rss_max[0], _rss_bytes())
                yield page

        t0 = time.perf_counter()
        write_xlsx(xlsx, "资助 Awards", AWARD_COLUMNS, sampled())
        xlsx_s = time.perf_counter() - t0
        out["exports_xlsx_rows_per_s"] = round(n / xlsx_s)
        out["exports_xlsx_seconds"] = round(xlsx_s, 2)
        out["exports_xlsx_bytes"] = xlsx.stat().st_size
        out["exports_xlsx_rss_growth_mb"] = round((rss_max[0] - rss_before) / 1e6, 2)

        csv_path = Path(tmp) / "awards.csv"
        t0 = time.perf_counter()
        with csv_path.open("wb") as f:
            f.write(csv_header(AWARD_COLUMNS))
            for page in _pages(n):
                f.write(csv_lines(AWARD_COLUMNS, page))
        csv_s = time.perf_counter() - t0
        out["exports_csv_rows_per_s"] = round(n / csv_s)
        out["exports_csv_bytes"] = csv_path.stat().st_size
        out["exports_xlsx_vs_csv"] = round(xlsx_s / csv_s, 1)

        # tracemalloc slows the writer several times over: a separate pass, for the peak alone.
        m = min(n, 20_000)
        tracemalloc.start()
        try:
            write_xlsx(Path(tmp) / "traced.xlsx", "资助 Awards", AWARD_COLUMNS, _pages(m))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        out["exports_xlsx_tracemalloc_rows"] = m
        out["exports_xlsx_tracemalloc_peak_mb"] = round(peak / 1e6, 2)
    out["exports_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["exports_load_average"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    for key, value in run_exports_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000).items():
        print(f"{key}: {value}")
