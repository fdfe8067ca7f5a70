"""The trader's own reporting pages (signed-in users, not staff): fees and volume."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.models import User
from reporting.fee_overview import fee_overview


@login_required
@require_safe
def fees(request: HttpRequest) -> HttpResponse:
    """/account/fees/: the user's tier, the schedule, 30-day volume and per-market rates."""
    user = request.user
    if not isinstance(user, User):  # unreachable: login_required ran first
        raise PermissionDenied
    return render(request, "reporting/fees.html", {"fees": fee_overview(user)})
