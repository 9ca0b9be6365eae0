"""The notice period's one side effect: a warning, once per year and process, when the calendar
data does not cover a year a notice runs through (Monday to Friday is assumed then)."""

from __future__ import annotations

import logging
from datetime import datetime

from services.notify.notice.domain import notice_ends_at

log = logging.getLogger(__name__)

_warned_years: set[int] = set()


def notice_end_at(published_at: datetime, notice_period_seconds: int | None) -> datetime:
    """When a notice published now ends (notice.domain.notice_ends_at), warning about assumed years."""
    end = notice_ends_at(published_at, notice_period_seconds)
    for year in sorted(end.assumed_years - _warned_years):
        _warned_years.add(year)
        log.warning(
            "the working-day calendar (chinese-calendar) has no data for %d: counting Monday to Friday "
            "as working days; upgrade the package once the State Council has published that year's holidays",
            year,
            extra={"year": year},
        )
    return end.at
