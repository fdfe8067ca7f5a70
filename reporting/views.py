"""Staff report pages and CSV exports under /reports/ (thin: parse with the form, call
`reporting.reports` / `reporting.exports`, render).

The door is the admin's: `staff_passed_mfa`. Anonymous visitors go to the sign-in, signed-in
users who are not staff get 403, and staff whose session did not pass TOTP are sent to the
admin's own login, which sets up or asks for the second factor and comes back here. A bad
filter is a 400: the page again with the form's error, or, for an export, one line of text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts.models import User
from exchange.admin import staff_passed_mfa
from markets.models import Market
from reporting import exports, reports
from reporting.forms import LedgerExportForm, ReportFilterForm, first_error
from reporting.models import Calendar

View = Callable[..., HttpResponseBase]


def staff_report(view: View) -> View:
    """Let in only active staff whose session passed the admin's TOTP step."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("account_login"))
        if not (isinstance(user, User) and user.is_active and user.is_staff):
            raise PermissionDenied
        if not staff_passed_mfa(request):
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
        return view(request, *args, **kwargs)

    return require_safe(never_cache(wrapped))


def _forecast_available() -> bool:
    try:
        reverse("reporting:forecast", args=["X"])
    except NoReverseMatch:  # a deployment without the forecast page
        return False
    return True


def _page(
    request: HttpRequest,
    template: str,
    form: ReportFilterForm,
    build: Callable[..., dict[str, Any]],
) -> HttpResponse:
    context: dict[str, Any] = {"form": form, "query": request.GET.urlencode()}
    if not form.is_valid():
        return render(request, template, context, status=400)
    context.update(build(**form.cleaned_data))
    return render(request, template, context)


@staff_report
def index(request: HttpRequest) -> HttpResponse:
    """The reports' home: links, and every market's totals over the last 30 days."""
    form = ReportFilterForm({})
    form.is_valid()
    data = form.cleaned_data
    return render(
        request,
        "reporting/index.html",
        {
            "totals": reports.market_totals(start=data["start"], end=data["end"]),
            "start": data["start"],
            "end": data["end"],
            "markets": Market.objects.order_by("symbol"),
            "forecast": _forecast_available(),
        },
    )


def _labels(rows: list[Any]) -> list[str]:
    return [r.period.label for r in rows]


@staff_report
def volume(request: HttpRequest) -> HttpResponse:
    """Volume, trades and fees of one market per day, month or year."""

    def build(
        *, market: Market, start: date, end: date, granularity: str, calendar: str, **_: Any
    ) -> dict[str, Any]:
        rows = reports.volume_series(
            market=market,
            start=start,
            end=end,
            granularity=reports.Granularity(granularity),
            calendar=Calendar(calendar),
        )
        chart = {
            "labels": _labels(rows),
            "series": {
                "quote_volume": [reports.plain(r.quote_volume) for r in rows],
                "fees": [reports.plain(r.fees) for r in rows],
                "trades": [r.trade_count for r in rows],
            },
        }
        return {"market": market, "rows": rows, "chart": chart}

    form = ReportFilterForm(request.GET, market_required=True)
    return _page(request, "reporting/volume.html", form, build)


@staff_report
def traders(request: HttpRequest) -> HttpResponse:
    """Active traders and sign-ups per period, and the top users of a market."""

    def build(
        *, market: Market, start: date, end: date, granularity: str, calendar: str, **_: Any
    ) -> dict[str, Any]:
        grain, cal = reports.Granularity(granularity), Calendar(calendar)
        active = reports.active_traders(
            market=None, start=start, end=end, granularity=grain, calendar=cal
        )
        joined = reports.sign_ups(start=start, end=end, granularity=grain, calendar=cal)
        chart = {
            "labels": _labels(active),
            "series": {"active": [r.count for r in active], "sign_ups": [r.count for r in joined]},
        }
        return {
            "market": market,
            "rows": list(zip(active, joined, strict=True)),
            "top": reports.top_users(market=market, start=start, end=end),
            "chart": chart,
        }

    form = ReportFilterForm(request.GET, market_required=True)
    return _page(request, "reporting/traders.html", form, build)


@staff_report
def funds(request: HttpRequest) -> HttpResponse:
    """Deposits and withdrawals per asset over a range."""

    def build(*, start: date, end: date, **_: Any) -> dict[str, Any]:
        return {"rows": reports.funds(start=start, end=end)}

    return _page(request, "reporting/funds.html", ReportFilterForm(request.GET), build)


def _csv(lines: Any, name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _refuse(form: ReportFilterForm) -> HttpResponse:
    return HttpResponseBadRequest(first_error(form), content_type="text/plain; charset=utf-8")


@staff_report
def export_trades(request: HttpRequest) -> HttpResponseBase:
    form = ReportFilterForm(request.GET)
    if not form.is_valid():
        return _refuse(form)
    d = form.cleaned_data
    market = d["market"]
    name = exports.filename("trades", d["start"], d["end"], market.symbol if market else "all")
    return _csv(exports.trade_lines(market=market, start=d["start"], end=d["end"]), name)


@staff_report
def export_ledger(request: HttpRequest) -> HttpResponseBase:
    form = LedgerExportForm(request.GET)
    if not form.is_valid():
        return _refuse(form)
    d = form.cleaned_data
    name = exports.filename("ledger", d["start"], d["end"], f"user{d['user'].pk}")
    return _csv(exports.ledger_lines(user=d["user"], start=d["start"], end=d["end"]), name)


@staff_report
def export_volume(request: HttpRequest) -> HttpResponseBase:
    form = ReportFilterForm(request.GET)
    if not form.is_valid():
        return _refuse(form)
    d = form.cleaned_data
    market = d["market"]
    parts = (market.symbol if market else "all", d["granularity"].value, d["calendar"].value)
    lines = exports.volume_lines(
        market=market,
        start=d["start"],
        end=d["end"],
        granularity=d["granularity"],
        calendar=d["calendar"],
    )
    return _csv(lines, exports.filename("volume", d["start"], d["end"], *parts))
