"""The staff reports' filters: one form parses and bounds every range a page or export takes.

Pages and exports share it so a bad date, a reversed range, an unknown market or a range
too long for its granularity is refused the same way everywhere (a form error the view
turns into a 400), before any query runs. Dates are ISO `YYYY-MM-DD` local days of
`REPORTING_TIME_ZONE`, whatever the calendar shown: the calendar only chooses how days are
grouped and labelled, so one URL means one set of days in both calendars.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from markets.models import Market
from reporting.models import Calendar
from reporting.reports import Granularity, local_today

DATE_FORMATS = ["%Y-%m-%d"]
EARLIEST = date(2000, 1, 1)  # before any trade this exchange can hold; bounds jdatetime too
LATEST = date(2100, 12, 31)
# The longest range per granularity: a days chart over 10 years is already 3,653 bars, and
# every period is one row of the table, so the limit is what a page can still show.
MAX_DAYS = {
    Granularity.DAY: 3_660,
    Granularity.MONTH: 50 * 366,
    Granularity.YEAR: 100 * 366,
}
DEFAULT_SPAN_DAYS = 30


def _date_field(label: Any) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )


class ReportFilterForm(forms.Form):
    """Range (from/to days, inclusive), market, granularity and calendar of a report."""

    start = _date_field(_("From"))
    end = _date_field(_("To"))
    market = forms.ModelChoiceField(
        label=_("Market"),
        queryset=Market.objects.order_by("symbol"),
        to_field_name="symbol",
        required=False,
        empty_label=_("All markets"),
        error_messages={"invalid_choice": _("Unknown market.")},
    )
    granularity = forms.ChoiceField(
        label=_("Per"), choices=Granularity.choices, required=False, initial=Granularity.DAY
    )
    calendar = forms.ChoiceField(
        label=_("Calendar"), choices=Calendar.choices, required=False, initial=Calendar.GREGORIAN
    )

    def __init__(self, *args: Any, market_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.market_required = market_required
        market = self.fields["market"]
        if market_required and isinstance(market, forms.ModelChoiceField):
            market.empty_label = None

    def clean_start(self) -> date | None:
        return self._in_bounds(self.cleaned_data.get("start"))

    def clean_end(self) -> date | None:
        return self._in_bounds(self.cleaned_data.get("end"))

    @staticmethod
    def _in_bounds(day: date | None) -> date | None:
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValidationError(
                _("Choose a day between %(first)s and %(last)s."),
                code="out_of_bounds",
                params={"first": EARLIEST.isoformat(), "last": LATEST.isoformat()},
            )
        return day

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        end = data.get("end") or local_today()
        start = data.get("start") or end - timedelta(days=DEFAULT_SPAN_DAYS - 1)
        granularity = Granularity(data.get("granularity") or Granularity.DAY)
        data.update(
            start=start,
            end=end,
            granularity=granularity,
            calendar=Calendar(data.get("calendar") or Calendar.GREGORIAN),
        )
        if start > end:
            raise ValidationError(_("“From” must not be after “To”."), code="reversed_range")
        limit = MAX_DAYS[granularity]
        if (end - start).days + 1 > limit:
            raise ValidationError(
                _("The range is too long: at most %(limit)s days per %(granularity)s."),
                code="range_too_long",
                params={"limit": limit, "granularity": granularity.label},
            )
        if self.market_required and data.get("market") is None:
            market = Market.objects.order_by("symbol").first()
            if market is None:
                raise ValidationError(_("No market exists yet."), code="no_market")
            data["market"] = market
        return data


class LedgerExportForm(ReportFilterForm):
    """A range and the user (by email) whose ledger postings are exported."""

    user = forms.CharField(label=_("User email"), max_length=254)

    def clean_user(self) -> User:
        email = self.cleaned_data["user"].strip()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise ValidationError(_("No user has this email."), code="unknown_user")
        return user


def first_error(form: forms.Form) -> str:
    """The form's errors as one line, for a CSV export's plain-text 400."""
    parts: list[str] = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        parts.extend(f"{label}: {error}" if label else str(error) for error in errors)
    return " ".join(parts)
