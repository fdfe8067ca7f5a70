"""Display filters of the trading pages: times in the display zone, digits per language.

`{% load trading_display %}`, then `{{ order.created_at|when }}` and `{{ text|digits }}`.
In Persian a time is a Jalali date with Persian digits; in English it is the Gregorian
YYYY-MM-DD HH:MM:SS. Both are in settings.REPORTING_TIME_ZONE (Asia/Tehran).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import jdatetime
from django import template
from django.conf import settings
from django.utils.translation import get_language

register = template.Library()

PERSIAN_DIGITS = str.maketrans("0123456789", "".join(chr(0x06F0 + i) for i in range(10)))


def display_zone() -> ZoneInfo:
    """The zone the pages show times in (read per call: tests override the setting)."""
    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def persian_active() -> bool:
    return (get_language() or "").split("-")[0] == "fa"


def to_persian_digits(text: str) -> str:
    """ASCII digits as Persian ones; everything else unchanged."""
    return text.translate(PERSIAN_DIGITS)


@register.filter
def digits(value: object) -> str:
    """`value` as text, its ASCII digits Persian when the active language is Persian."""
    if value is None:
        return ""
    text = str(value)
    return to_persian_digits(text) if persian_active() else text


@register.filter
def when(value: datetime | None) -> str:
    """An aware datetime in the display zone: in Persian the Jalali "1405/09/17 04:32:03"
    written in Persian digits, else "2026-12-08 04:32:03". "" for None."""
    if value is None:
        return ""
    local = value.astimezone(display_zone())
    if persian_active():
        jalali = jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))
        return to_persian_digits(jalali.strftime("%Y/%m/%d %H:%M:%S"))
    return local.strftime("%Y-%m-%d %H:%M:%S")
