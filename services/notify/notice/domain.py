"""When a notice period (公示期) ends: pure functions over the mainland China working-day calendar.

The period is NOTICE_WORKING_DAYS working days. As the Civil Code counts periods (民法典 第二百零一条:
the day an event happens is not counted; counting starts the next day), the day of publication
is not one of them; the period ends at the close of business (第二百零三条) of its last working day,
taken as 17:00 Beijing time. Working days are the `chinese-calendar` package's: Monday to
Friday less the statutory holidays, plus the make-up working days (调休) on weekends. For a year
the package has no data for, Monday to Friday stands in, and the answer says which years those
were (the caller warns: the State Council publishes each year's holidays late in the year before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar

from services.notify.domain import notice_ends

NOTICE_WORKING_DAYS = 5
CLOSE_OF_BUSINESS = time(17, 0)
# China has kept one offset all year since 1991, so a fixed zone is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_COVERED_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


@dataclass(frozen=True)
class NoticeEnd:
    at: datetime
    """17:00 Beijing time on the last working day of the period."""
    assumed_years: frozenset[int] = frozenset()
    """Years the calendar data did not cover, counted as Monday to Friday."""


def is_covered(day: date) -> bool:
    """Whether the package knows this year's holidays and make-up days."""
    return day.year in _COVERED_YEARS


def is_working_day(day: date) -> bool:
    """A working day on the mainland calendar (make-up days included); Monday to Friday for a
    year the data does not cover."""
    if is_covered(day):
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


def notice_end(published_at: datetime, working_days: int = NOTICE_WORKING_DAYS) -> NoticeEnd:
    """The end of a notice published at `published_at` (an aware time): `working_days` working
    days after the day of publication (its Beijing date), at 17:00 Beijing time."""
    if published_at.tzinfo is None:
        raise ValueError("published_at must be an aware time")
    if working_days < 1:
        raise ValueError("a notice period has at least one working day")
    day = published_at.astimezone(BEIJING).date()
    counted = 0
    assumed: set[int] = set()
    while counted < working_days:
        day += timedelta(days=1)
        if not is_covered(day):
            assumed.add(day.year)
        if is_working_day(day):
            counted += 1
    return NoticeEnd(datetime.combine(day, CLOSE_OF_BUSINESS, BEIJING), frozenset(assumed))


def notice_ends_at(published_at: datetime, notice_period_seconds: int | None) -> NoticeEnd:
    """The end of a notice: a fixed number of seconds when the deployment sets one (tests do),
    else the working-day rule."""
    if notice_period_seconds is not None:
        return NoticeEnd(notice_ends(published_at, notice_period_seconds))
    return notice_end(published_at)
