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
from reporting.forecast import forecast
from reporting.statistics.montecarlo import QUANTILES

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
    """The page's query parameters, all optional, with the command's defaults.

    The form checks only shape (text lengths, the interval's name); reporting.forecast
    checks the values and its DomainError lands on the field it names.
    """

    interval = forms.ChoiceField(
        label=_("Interval"), choices=[(name, name) for name in INTERVALS], initial="1d"
    )
    horizon = forms.CharField(label=_("Horizon (steps)"), max_length=6, initial="30")
    pattern = forms.CharField(label=_("Pattern (units)"), max_length=40, initial="-5,1")
    unit = forms.CharField(
        label=_("Unit"),
        max_length=40,
        initial="vol",
        help_text=_('"vol" (the median absolute move) or "fixed:5" (a price step).'),
    )
    paths = forms.CharField(label=_("Paths"), max_length=7, initial="10000")
    seed = forms.CharField(label=_("Seed"), max_length=10, initial="1")
    levels = forms.CharField(
        label=_("Levels"),
        max_length=200,
        required=False,
        help_text=_("Prices, comma-separated: the chance of ending below or above each."),
    )


DEFAULTS = {name: field.initial for name, field in ForecastForm.base_fields.items()}


@never_cache
@staff_with_mfa
def forecast_page(request: HttpRequest, symbol: str) -> HttpResponse:
    """The forecast of `symbol`: the form, and (when the parameters are good) the results."""
    form = ForecastForm({**DEFAULTS, **request.GET.dict()})
    context: dict[str, Any] = {"form": form, "symbol": symbol.upper(), "result": None}
    if form.is_valid():
        data = form.cleaned_data
        levels = [part for part in data["levels"].split(",") if part.strip()]
        try:
            result = forecast(
                symbol,
                interval=data["interval"],
                horizon=data["horizon"].strip(),
                pattern=data["pattern"],
                unit=data["unit"],
                seed=data["seed"].strip(),
                paths=data["paths"].strip(),
                levels=levels,
            )
        except DomainError as error:
            field = error.field if error.field in form.fields else None
            form.add_error(field, error.message)
        else:
            context["result"] = result
            context["chart"] = {
                "steps": [step for step, _prices in result.fan],
                "bands": [[str(p[q]) for _step, p in result.fan] for q in range(len(QUANTILES))],
                "labels": [f"{int(q * 100)}%" for q in QUANTILES],
                "last": str(result.last_close),
            }
            context["quantiles"] = [f"{int(q * 100)}%" for q in QUANTILES]
    return render(request, "reporting/forecast.html", context)
