"""Call terms (申报批次): read from call.opened or a stored row, and what the catalog alone refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.contracts.events import CallOpened
from shared.policy.calls import CallTerms, call_problems
from shared.policy.catalog import load_catalog

CST = timezone(timedelta(hours=8))
VERSION = load_catalog().version

# GT-EQUITY (000): event window 2023-08-31..2025-12-31, support years 2023..2025.
TERMS = CallTerms(
    id="call_equity_2025", program="GT-EQUITY", year=2025,
    opens_at=datetime(2025, 3, 1, tzinfo=CST), closes_at=datetime(2025, 6, 30, 17, tzinfo=CST),
    event_from=date(2025, 1, 1), event_to=date(2025, 12, 31), catalog_version=VERSION, budget_fen=None,
)


def fields(terms: CallTerms) -> list[str]:
    return [name for name, _ in call_problems(terms, load_catalog())]


def test_from_event() -> None:
    opened = CallOpened.model_validate({
        "id": "call_1", "program": "GT-EQUITY", "year": 2025, "title": "2025年度",
        "opens_at": "2025-03-01T00:00:00+08:00", "closes_at": "2025-06-30T17:00:00+08:00",
        "event_window": {"from": "2025-01-01", "to": "2025-12-31"}, "catalog_version": VERSION,
        "budget": "50000000.00", "opened_by": {"id": "operator"}, "opened_at": "2025-02-28T09:00:00+00:00",
    })
    terms = CallTerms.from_event(opened)
    assert terms == replace(TERMS, id="call_1", budget_fen=5_000_000_000)
    assert terms.budget == "50000000.00"
    assert CallTerms.from_event(opened.model_copy(update={"budget": None})).budget_fen is None


def test_from_row_ignores_other_columns() -> None:
    row = {"id": TERMS.id, "program": "GT-EQUITY", "year": 2025, "title": "x", "opens_at": TERMS.opens_at,
           "closes_at": TERMS.closes_at, "event_from": TERMS.event_from, "event_to": TERMS.event_to,
           "catalog_version": VERSION, "budget_fen": None, "closed_by": None}
    assert CallTerms.from_row(row) == TERMS


def test_open_from_opens_at_to_just_before_closes_at() -> None:
    assert not TERMS.is_open_at(TERMS.opens_at - timedelta(microseconds=1))
    assert TERMS.is_open_at(TERMS.opens_at)
    assert TERMS.is_open_at(TERMS.closes_at - timedelta(microseconds=1))
    assert not TERMS.is_open_at(TERMS.closes_at)
    assert TERMS.is_open_at(datetime(2025, 3, 1, tzinfo=UTC))  # another offset, the same instants


def test_good_terms_have_no_problem() -> None:
    assert call_problems(TERMS, load_catalog()) == []
    # The program's own window, edge to edge, and its first and last years.
    edges = replace(TERMS, event_from=date(2023, 8, 31), event_to=date(2025, 12, 31))
    assert fields(replace(edges, year=2023)) == fields(replace(edges, year=2025)) == []
    assert fields(replace(TERMS, event_from=TERMS.event_to)) == []  # one day


PROBLEMS = [
    ("program-not-in-version", replace(TERMS, program="GT-NOPE"), ["program"]),
    ("event-window-starts-before-the-program's", replace(TERMS, event_from=date(2023, 8, 30)), ["event_window"]),
    ("event-window-ends-after-the-program's", replace(TERMS, event_to=date(2026, 1, 1)), ["event_window"]),
    ("event-window-reversed", replace(TERMS, event_from=date(2025, 6, 2), event_to=date(2025, 6, 1)),
     ["event_window"]),
    ("closes-when-it-opens", replace(TERMS, closes_at=TERMS.opens_at), ["closes_at"]),
    ("closes-before-it-opens", replace(TERMS, closes_at=TERMS.opens_at - timedelta(seconds=1)), ["closes_at"]),
    ("year-before-the-program's", replace(TERMS, year=2022), ["year"]),
    ("year-after-the-program's", replace(TERMS, year=2026), ["year"]),
    ("budget-zero", replace(TERMS, budget_fen=0), ["budget"]),
    ("naive-time", replace(TERMS, opens_at=datetime(2025, 3, 1)), ["opens_at"]),
    ("another-version", replace(TERMS, catalog_version="sha256:" + "0" * 64), ["catalog_version"]),
]


@pytest.mark.parametrize(("terms", "expected"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS])
def test_problem_names_its_field(terms: CallTerms, expected: list[str]) -> None:
    problems = call_problems(terms, load_catalog())
    assert [name for name, _ in problems] == expected
    assert all(message for _, message in problems)


def test_event_window_message_cites_the_program_window() -> None:
    [(_, message)] = call_problems(replace(TERMS, event_to=date(2026, 1, 1)), load_catalog())
    assert "2023-08-31..2025-12-31" in message and load_catalog().programs["GT-EQUITY"].window.citation in message
