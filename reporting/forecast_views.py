"""The staff forecast page: `reports/forecast/<symbol>/` (routed by reporting.urls).

Staff only, behind the same door as the admin (exchange.admin.staff_passed_mfa): a visitor
who is not signed in, or staff whose session skipped the second factor, is sent to the
admin's sign-in (which asks for the code or the TOTP set-up, then comes back); a signed-in
non-staff user gets 403. The view is thin: a form parses the query, reporting.forecast
does the work, and every bad parameter is a form error on a 200 page, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from exchange.admin import staff_passed_mfa
from exchange.errors import DomainError
from markets.marketdata.intervals import INTERVALS
from markets.selectors import candles, get_market

View = Callable[..., HttpResponse]


def staff_with_mfa(view: View) -> View:
    """Let through only active staff whose session passed the TOTP step (as the admin)."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if staff_passed_mfa(request):
            return view(request, *args, **kwargs)
        user = request.user
        if user.is_authenticated and not (user.is_active and user.is_staff):
            return HttpResponseForbidden(_("Staff only."))
        # The admin's login view sends staff to the code (or its set-up) and back here.
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))

    return gated


class ForecastForm(forms.Form):
    """The page's query parameters; all optional, with the command's defaults."""

    interval = forms.ChoiceField(
        label=_("Interval"), choices=[(name, name) for name in INTERVALS], initial="1d"
    )


@never_cache
@staff_with_mfa
def forecast_page(request: HttpRequest, symbol: str) -> HttpResponse:
    """The forecast of `symbol`: the form, and (when the parameters are good) the results."""
    form = ForecastForm(request.GET or {"interval": "1d"})
    context: dict[str, Any] = {"form": form, "symbol": symbol.upper(), "closes": []}
    if form.is_valid():
        try:
            market = get_market(symbol=symbol)
            context["market"] = market
            context["closes"] = candles(market, form.cleaned_data["interval"], limit=60)
        except DomainError as error:
            form.add_error(None, error.message)
    return render(request, "reporting/forecast.html", context)
