"""The trader's own pages under /account/ (signed-in users, not staff): the account
overview, fees and volume.

The overview lives here, not in accounts.views, because it shows the fee tier and the
30-day volume, which only reporting computes (accounts may not import reporting).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.models import KycLevel, User
from accounts.selectors import (
    count_active_api_keys,
    count_webhook_endpoints,
    list_level_limits,
    next_kyc_level,
)
from accounts.services.twofactor import has_totp
from reporting.fee_overview import fee_overview


@login_required
@require_safe
def account(request: HttpRequest) -> HttpResponse:
    """/account/: profile, security, KYC limits, fee tier and API access, one card each."""
    user = _user(request)
    following = next_kyc_level(user.kyc_level)
    webhooks_total, webhooks_active = count_webhook_endpoints(user=user)
    context = {
        "profile": user,
        "kyc_label": KycLevel(user.kyc_level).label,
        "next_kyc_label": None if following is None else KycLevel(following).label,
        "limits": list_level_limits(user=user),
        "has_totp": has_totp(user=user),
        "session_expires": request.session.get_expiry_date(),
        "fees": fee_overview(user),
        "api_keys_active": count_active_api_keys(user=user),
        "webhooks_total": webhooks_total,
        "webhooks_active": webhooks_active,
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_safe
def fees(request: HttpRequest) -> HttpResponse:
    """/account/fees/: the user's tier, the schedule, 30-day volume and per-market rates."""
    return render(request, "reporting/fees.html", {"fees": fee_overview(_user(request))})


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # unreachable: login_required ran first
        raise PermissionDenied
    return user
