"""Template context every page shares."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def display(request: HttpRequest) -> dict[str, str]:
    """The zone times are shown in (the pages' scripts read it from a meta tag)."""
    return {"DISPLAY_TIME_ZONE": settings.REPORTING_TIME_ZONE}
