"""Display filters of the trading pages: `{% load trading_display %}`, then
`{{ order.created_at|when }}` and `{{ text|digits }}`.

The filters are accounts' (accounts/templatetags/display.py: Jalali with Persian digits in
Persian, YYYY-MM-DD HH:MM:SS otherwise, in settings.REPORTING_TIME_ZONE); this library only
registers them for the trading templates and names the display zone for the views.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django import template
from django.conf import settings

from accounts.templatetags.display import digits, when

register = template.Library()
register.filter("digits", digits, is_safe=True)
register.filter("when", when)

__all__ = ["digits", "display_zone", "register", "when"]


def display_zone() -> ZoneInfo:
    """The zone the pages show times in (read per call: tests override the setting)."""
    return ZoneInfo(settings.REPORTING_TIME_ZONE)
