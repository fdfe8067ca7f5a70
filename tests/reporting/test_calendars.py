"""Local days and Gregorian/Jalali periods (no database): DST days, Jalali leap years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import jdatetime
import pytest

from reporting.calendars import (
    day_bounds,
    days_between,
    local_day,
    month_of,
    periods_of,
    year_of,
)

NEW_YORK = ZoneInfo("America/New_York")
TEHRAN = ZoneInfo("Asia/Tehran")


@pytest.mark.parametrize(
    ("_case", "day", "zone", "hours"),
    [
        ("spring forward", date(2025, 3, 9), NEW_YORK, 23),
        ("fall back", date(2025, 11, 2), NEW_YORK, 25),
        ("ordinary", date(2025, 6, 1), NEW_YORK, 24),
        ("Tehran's last DST start, at midnight", date(2022, 3, 22), TEHRAN, 23),
        ("Tehran's last DST end", date(2022, 9, 21), TEHRAN, 25),
    ],
)
def test_day_bounds_follow_the_zone(_case: str, day: date, zone: ZoneInfo, hours: int):
    start, end = day_bounds(day, zone)
    assert end - start == timedelta(hours=hours)
    assert local_day(start, zone) == day
    assert local_day(end - timedelta(microseconds=1), zone) == day
    assert local_day(end, zone) == day + timedelta(days=1)


def test_tehran_midnight_in_utc():
    assert day_bounds(date(2026, 3, 21), TEHRAN)[0] == datetime(2026, 3, 20, 20, 30, tzinfo=UTC)


def test_jalali_leap_year_has_thirty_days_in_esfand():
    esfand_1403 = month_of(date(2025, 3, 20), "jalali")
    assert (esfand_1403.year, esfand_1403.month) == (1403, 12)
    assert (esfand_1403.first_day, esfand_1403.last_day) == (date(2025, 2, 19), date(2025, 3, 20))
    assert jdatetime.date(1403, 1, 1).isleap()
    assert (year_of(date(2025, 3, 21), "jalali").last_day - date(2025, 3, 21)).days + 1 == 365


def test_months_tile_the_years_in_both_calendars():
    for calendar in ("gregorian", "jalali"):
        for day in (date(2024, 1, 1), date(2025, 3, 21), date(2026, 12, 31)):
            year = year_of(day, calendar)
            months = sorted(
                {month_of(d, calendar) for d in days_between(year.first_day, year.last_day)}
            )
            assert [m.month for m in months] == list(range(1, 13))
            assert months[0].first_day == year.first_day
            assert months[-1].last_day == year.last_day
            for left, right in pairwise(months):
                assert right.first_day == left.last_day + timedelta(days=1)


def test_periods_of_days_cover_both_calendars():
    months, years = periods_of([date(2025, 3, 20), date(2025, 3, 21)])
    assert {(p.calendar, p.year, p.month) for p in months} == {
        ("gregorian", 2025, 3),
        ("jalali", 1403, 12),
        ("jalali", 1404, 1),
    }
    assert {(p.calendar, p.year) for p in years} == {
        ("gregorian", 2025),
        ("jalali", 1403),
        ("jalali", 1404),
    }
