"""The notice period (公示期) in working days on the mainland calendar: across holidays with
make-up working days (调休), by the Beijing date, and Monday to Friday (with one warning) for a
year the calendar data does not cover."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from services.notify.notice import handlers as notice_handlers
from services.notify.notice.domain import (
    BEIJING,
    NoticeEnd,
    is_covered,
    is_working_day,
    notice_end,
    notice_ends_at,
)


def beijing(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def test_national_day_2026_with_its_make_up_saturday() -> None:
    # Published Tue 29 Sep: the day itself does not count. 30 Sep (1), 1-7 Oct off, 8 Oct (2),
    # 9 Oct (3), Sat 10 Oct is a make-up working day (4), Sun 11 Oct off, Mon 12 Oct (5).
    assert not is_working_day(date(2026, 10, 5))  # a Monday inside the holiday
    assert is_working_day(date(2026, 10, 10))  # a Saturday worked in lieu
    end = notice_end(beijing(2026, 9, 29))
    assert end == NoticeEnd(beijing(2026, 10, 12, 17))
    assert end.at.astimezone(UTC) == datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


def test_spring_festival_2026_with_its_make_up_days() -> None:
    # Published Thu 12 Feb: Fri 13 (1), Sat 14 is worked (2), 15-23 Feb off, 24 (3), 25 (4), 26 (5).
    assert is_working_day(date(2026, 2, 14)) and not is_working_day(date(2026, 2, 23))
    assert notice_end(beijing(2026, 2, 12)) == NoticeEnd(beijing(2026, 2, 26, 17))


def test_an_ordinary_week_and_a_weekend_publication() -> None:
    assert notice_end(beijing(2026, 3, 2)).at == beijing(2026, 3, 9, 17)  # Mon → next Mon
    assert notice_end(beijing(2026, 3, 7)).at == beijing(2026, 3, 13, 17)  # Sat → Fri
    assert notice_end(beijing(2026, 3, 2, 23, 59)).at == beijing(2026, 3, 9, 17)  # late the same day


def test_the_day_is_the_beijing_date() -> None:
    # 23:30 UTC on Sunday 1 March is 07:30 on Monday 2 March in Beijing.
    assert notice_end(datetime(2026, 3, 1, 23, 30, tzinfo=UTC)).at == beijing(2026, 3, 9, 17)
    assert notice_end(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)).at == beijing(2026, 3, 6, 17)  # still Sunday


def test_a_year_the_data_does_not_cover_counts_monday_to_friday() -> None:
    # Spring Festival 2027 falls on 6 February; without the State Council's 2027 notice in the
    # data, the week after it counts as five working days.
    assert not is_covered(date(2027, 2, 8))
    end = notice_end(beijing(2027, 2, 5))
    assert end == NoticeEnd(beijing(2027, 2, 12, 17), frozenset({2027}))
    # Across New Year: 30 and 31 Dec 2026 from the data, then 1, 4, 5 Jan 2027 Monday to Friday.
    across = notice_end(beijing(2026, 12, 29))
    assert across == NoticeEnd(beijing(2027, 1, 5, 17), frozenset({2027}))


def test_the_seconds_override_wins() -> None:
    at = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)
    assert notice_ends_at(at, 60) == NoticeEnd(at + timedelta(seconds=60))
    assert notice_ends_at(at, None) == notice_end(at)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        notice_end(datetime(2026, 9, 29, 10, 0))  # naive
    with pytest.raises(ValueError):
        notice_end(beijing(2026, 9, 29), working_days=0)


def test_an_uncovered_year_is_warned_about_once(caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notice_handlers, "_warned_years", set())
    with caplog.at_level(logging.WARNING, logger=notice_handlers.__name__):
        first = notice_handlers.notice_end_at(beijing(2027, 2, 5), None)
        notice_handlers.notice_end_at(beijing(2027, 3, 5), None)
        notice_handlers.notice_end_at(beijing(2026, 3, 2), None)
    assert first == beijing(2027, 2, 12, 17)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2027" in warnings[0].getMessage()
