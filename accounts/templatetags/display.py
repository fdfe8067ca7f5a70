"""Template filters for dates and digits as the reader's language writes them.

`|when` shows an instant in settings.REPORTING_TIME_ZONE: as a Jalali date and time with
Persian digits when the active language is Persian, else as YYYY-MM-DD HH:MM:SS.
`|digits` turns ASCII digits into Persian ones, in Persian only; nothing else changes, so
an amount keeps its sign, its point and every place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import jdatetime
from django import template
from django.conf import settings
from django.utils.translation import get_language

register = template.Library()

_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _persian() -> bool:
    language = get_language() or ""
    return language == "fa" or language.startswith("fa-")


def to_persian_digits(text: str) -> str:
    """ASCII digits as Persian digits ("2024" -> "۲۰۲۴"); other characters unchanged."""
    return text.translate(_PERSIAN_DIGITS)


@register.filter(is_safe=True)
def digits(value: object) -> str:
    """`{{ amount|digits }}`: Persian digits when the active language is Persian."""
    if value is None:
        return ""
    text = str(value)
    return to_persian_digits(text) if _persian() else text


@register.filter
def when(value: datetime | None) -> str:
    """`{{ deposit.created_at|when }}`: the instant in the reporting time zone.

    Persian: Jalali "1403/10/01 13:30:00" in Persian digits; otherwise Gregorian
    "2024-12-21 13:30:00". A naive datetime is taken as UTC; None shows as "".
    """
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(ZoneInfo(settings.REPORTING_TIME_ZONE))
    if _persian():
        jalali = jdatetime.datetime.fromgregorian(datetime=local)
        return to_persian_digits(jalali.strftime("%Y/%m/%d %H:%M:%S"))
    return local.strftime("%Y-%m-%d %H:%M:%S")
