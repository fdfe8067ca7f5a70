"""Local days of the reporting time zone, and Gregorian and Jalali months and years of them.

A *day* is a date of `settings.REPORTING_TIME_ZONE` (zoneinfo); a trade belongs to day d
when `day_start(d) <= created_at < day_start(d + 1)`, the instants computed here in Python
and handed to SQL as UTC bounds, so the rollup, the selector and the checks agree on every
trade even across a daylight-saving change (a 23- or 25-hour day). A midnight that does not
exist locally (a zone that springs forward at 00:00, as Asia/Tehran did until 2022) maps,
with fold=0, to the instant of the transition: still the first instant of that date.

Months and years are ranges of whole local days, `Period(calendar, year, month, first_day,
last_day)` (month 0 for a year). Jalali boundaries come from jdatetime (its leap rule),
never from a hand-written table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import jdatetime
from django.conf import settings

from reporting.models import Calendar

ONE_DAY = timedelta(days=1)


def reporting_zone() -> ZoneInfo:
    """The zone whose dates are the reporting days (read per call: tests override it)."""
    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def day_start(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The first instant (UTC) of the local day `day`."""
    local = datetime.combine(day, time.min).replace(tzinfo=zone or reporting_zone())
    return local.astimezone(UTC)


def day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the local day `day` in UTC: the trades of that day, by created_at."""
    zone = zone or reporting_zone()
    return day_start(day, zone), day_start(day + ONE_DAY, zone)


def local_day(moment: datetime, zone: ZoneInfo | None = None) -> date:
    """The local day an aware instant falls in."""
    return moment.astimezone(zone or reporting_zone()).date()


def local_today() -> date:
    """Today in the reporting zone, by the exchange's clock (seed_history shifts it)."""
    from exchange import clock

    return local_day(clock.now())


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A month (1..12) or a year (month 0) of one calendar, as whole local days."""

    calendar: str
    year: int
    month: int  # 0: the whole year
    first_day: date
    last_day: date


def month_of(day: date, calendar: str) -> Period:
    """The month of `calendar` that contains the (local) date `day`."""
    if calendar == Calendar.GREGORIAN:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(calendar, day.year, day.month, first, following - ONE_DAY)
    jday = jdatetime.date.fromgregorian(date=day)
    first = jdatetime.date(jday.year, jday.month, 1).togregorian()
    year, month = (jday.year + 1, 1) if jday.month == 12 else (jday.year, jday.month + 1)
    following = jdatetime.date(year, month, 1).togregorian()
    return Period(calendar, jday.year, jday.month, first, following - ONE_DAY)


def year_of(day: date, calendar: str) -> Period:
    """The year of `calendar` that contains the (local) date `day`."""
    if calendar == Calendar.GREGORIAN:
        return Period(calendar, day.year, 0, date(day.year, 1, 1), date(day.year, 12, 31))
    jyear = jdatetime.date.fromgregorian(date=day).year
    first = jdatetime.date(jyear, 1, 1).togregorian()
    following = jdatetime.date(jyear + 1, 1, 1).togregorian()
    return Period(calendar, jyear, 0, first, following - ONE_DAY)


def periods_of(days: Iterable[date]) -> tuple[set[Period], set[Period]]:
    """(months, years) of both calendars that contain any of `days`."""
    months: set[Period] = set()
    years: set[Period] = set()
    for day in set(days):
        for calendar in Calendar.values:
            months.add(month_of(day, calendar))
            years.add(year_of(day, calendar))
    return months, years


def days_between(first: date, last: date) -> list[date]:
    """Every date from `first` to `last`, inclusive."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
