"""The trader's orders and trades history page (/orders/), its CSV exports and cancel.

Reads go through trading.selectors (list_orders, list_user_trades); the cancel button calls
trading.services.orders.cancel_order. Filters come from a GET form: a bad value (an unknown
market, a date that is not YYYY-MM-DD) is shown as a form error and simply not applied, so
a hand-edited URL never answers 500. Dates are days of the display zone
(settings.REPORTING_TIME_ZONE), both ends included; Persian and Arabic-Indic digits are
read as ASCII ones.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.amounts import format_amount
from accounts.models import User
from exchange.errors import DomainError
from markets.selectors import list_markets
from trading.models import Order, OrderSide, OrderStatus, Trade
from trading.selectors import list_orders, list_user_trades
from trading.services.orders import cancel_order
from trading.templatetags.trading_display import display_zone

PAGE_SIZE = 50
CSV_CHUNK = 2_000  # rows per round trip of the server-side cursor
TABS = ("orders", "trades")
# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits read as ASCII ones.
_NATIVE_DIGITS = str.maketrans(
    "".join(chr(0x06F0 + i) for i in range(10)) + "".join(chr(0x0660 + i) for i in range(10)),
    "0123456789" * 2,
)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_DATE_CHARS = 20

ORDER_HEADER = (
    "id", "created_at", "market", "side", "type", "status", "price", "quantity",
    "filled_quantity", "filled_quote", "fee_paid", "fee_asset", "client_order_id",
)  # fmt: skip
TRADE_HEADER = (
    "id", "created_at", "market", "order_id", "side", "role", "price", "amount", "total",
    "fee", "fee_asset",
)  # fmt: skip


def normalise_digits(text: str) -> str:
    """Persian and Arabic-Indic digits as ASCII (the Persian "1405-01-02" -> "1405-01-02")."""
    return text.translate(_NATIVE_DIGITS)


class DayField(forms.CharField):
    """A day typed as YYYY-MM-DD, in ASCII, Persian or Arabic-Indic digits."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", MAX_DATE_CHARS)
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": "YYYY-MM-DD"}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> date | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        text = normalise_digits(text.strip())
        if not _ISO_DAY.fullmatch(text):
            raise forms.ValidationError(
                _("Enter a date as YYYY-MM-DD, for example 2026-03-01."), code="invalid"
            )
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(
                _("%(value)s is not a date on the calendar.") % {"value": text}, code="invalid"
            ) from None


class HistoryFilterForm(forms.Form):
    """The filters of both tabs (status applies to orders only)."""

    market = forms.ModelChoiceField(
        queryset=list_markets(),
        to_field_name="symbol",
        required=False,
        empty_label=gettext_lazy("All markets"),
        label=gettext_lazy("Market"),
    )
    side = forms.ChoiceField(
        choices=[("", gettext_lazy("Both sides")), *OrderSide.choices],
        required=False,
        label=gettext_lazy("Side"),
    )
    status = forms.ChoiceField(
        choices=[("", gettext_lazy("Any status")), *OrderStatus.choices],
        required=False,
        label=gettext_lazy("Status"),
    )
    date_from = DayField(label=gettext_lazy("From"))
    date_to = DayField(label=gettext_lazy("To"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def filters(self) -> dict[str, Any]:
        """The valid filters only: a refused value filters nothing."""
        self.is_valid()
        return {k: v for k, v in getattr(self, "cleaned_data", {}).items() if v}


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min).replace(tzinfo=display_zone()).astimezone(UTC)


def _in_range(rows: QuerySet[Any], filters: dict[str, Any]) -> QuerySet[Any]:
    if "date_from" in filters:
        rows = rows.filter(created_at__gte=_day_start(filters["date_from"]))
    if "date_to" in filters:
        rows = rows.filter(created_at__lt=_day_start(filters["date_to"] + timedelta(days=1)))
    return rows


def filtered_orders(user: User, filters: dict[str, Any]) -> QuerySet[Order]:
    """The user's orders matching `filters`, newest first."""
    orders = list_orders(user=user, market=filters.get("market")).select_related(
        "market__base", "market__quote"
    )
    if "side" in filters:
        orders = orders.filter(side=filters["side"])
    if "status" in filters:
        orders = orders.filter(status=filters["status"])
    return _in_range(orders, filters)


def filtered_trades(user: User, filters: dict[str, Any]) -> QuerySet[Trade]:
    """The user's trades matching `filters`, newest first; `side` is the user's side."""
    trades = list_user_trades(user=user, market=filters.get("market")).select_related(
        "market__base", "market__quote"
    )
    if filters.get("side") == OrderSide.BUY:
        trades = trades.filter(buy_order__user=user)
    elif filters.get("side") == OrderSide.SELL:
        trades = trades.filter(sell_order__user=user)
    return _in_range(trades, filters)


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One fill from the user's side (as TradeSerializer shows it in the API)."""

    trade: Trade
    order: Order
    is_maker: bool

    @classmethod
    def of(cls, trade: Trade, user_id: int) -> TradeRow:
        # Maker and taker are the buy and sell orders; a self-trade shows as the taker.
        buy, sell = trade.buy_order, trade.sell_order
        if buy.user_id == user_id and sell.user_id == user_id:
            own = buy if buy.pk == trade.taker_order_id else sell
        else:
            own = buy if buy.user_id == user_id else sell
        return cls(trade=trade, order=own, is_maker=own.pk == trade.maker_order_id)

    @property
    def side(self) -> str:
        return str(self.order.side)

    @property
    def fee(self) -> Decimal:
        return self.trade.maker_fee if self.is_maker else self.trade.taker_fee


def _query(params: QueryDict, **changes: str | None) -> str:
    """`params` with `changes` (None drops a key), as a query string with its "?"."""
    query = params.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    text = query.urlencode()
    return f"?{text}" if text else ""


@login_required
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    """The history page: the Orders tab (default) or `?tab=trades`, filtered, 50 a page."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "orders"
    form = HistoryFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    rows: QuerySet[Any] = (
        filtered_orders(user, filters) if tab == "orders" else filtered_trades(user, filters)
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items: Sequence[Any] = (
        list(page) if tab == "orders" else [TradeRow.of(t, user.pk) for t in page]
    )
    params = request.GET
    context = {
        "tab": tab,
        "form": form,
        "page": page,
        "items": items,
        "orders_url": _query(params, tab=None, page=None),
        "trades_url": _query(params, tab="trades", page=None),
        "next_url": _query(params, page=str(page.next_page_number())) if page.has_next() else None,
        "previous_url": _query(params, page=str(page.previous_page_number()))
        if page.has_previous()
        else None,
        "csv_url": reverse("orders_csv" if tab == "orders" else "trades_csv")
        + _query(params, tab=None, page=None),
        "back": request.get_full_path(),
    }
    return render(request, "trading/orders.html", context)


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask to cancel one of the user's open orders; a refusal becomes an error message."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    try:
        order = cancel_order(user=user, order_id=pk)
    except DomainError as exc:
        messages.error(request, _cancel_refusal(exc))
    else:
        messages.success(request, _("Cancellation of order %(id)s requested.") % {"id": order.pk})
    return redirect(_safe_back(request.POST.get("back", "")))


def _safe_back(back: str) -> str:
    """The page the cancel came from (this page, with its filters), else the bare page."""
    page = reverse("orders")
    if (
        len(back) > 2_000
        or not (back == page or back.startswith(page + "?"))
        or any(c.isspace() or not c.isprintable() or c == "\\" for c in back)
    ):
        return page
    return back


def _cancel_refusal(exc: DomainError) -> str:
    known = {
        "order_not_found": _("No such order."),
        "order_not_open": _("The order is no longer open."),
        "market_halted": _("The market is halted; orders cannot be cancelled now."),
    }
    return known.get(exc.code, exc.message)


# --- CSV --------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns the line, so csv.writer builds one line."""

    def write(self, value: str) -> str:
        return value


def _lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def iso_utc(moment: datetime) -> str:
    """ "2026-03-10T10:07:00.123456Z": ISO 8601 in UTC, always with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _exact(value: Decimal | None, decimals: int) -> str:
    return "" if value is None else format_amount(value, decimals)


def _order_line(order: Order) -> list[object]:
    base, quote = order.market.base.decimals, order.market.quote.decimals
    return [
        order.pk,
        iso_utc(order.created_at),
        order.market.symbol,
        order.side,
        order.order_type,
        order.status,
        _exact(order.price, quote),
        _exact(order.quantity, base),
        _exact(order.filled_quantity, base),
        _exact(order.filled_quote, quote),
        _exact(order.fee_paid, quote),
        order.market.quote.code,
        order.client_order_id,
    ]


def _trade_line(row: TradeRow) -> list[object]:
    trade = row.trade
    base, quote = trade.market.base.decimals, trade.market.quote.decimals
    return [
        trade.pk,
        iso_utc(trade.created_at),
        trade.market.symbol,
        row.order.pk,
        row.side,
        "maker" if row.is_maker else "taker",
        _exact(trade.price, quote),
        _exact(trade.quantity, base),
        _exact(trade.quote_quantity, quote),
        _exact(row.fee, quote),
        trade.market.quote.code,
    ]


def _filename(kind: str, filters: dict[str, Any]) -> str:
    parts = [kind]
    if "market" in filters:
        parts.append(filters["market"].symbol)
    for key in ("date_from", "date_to"):
        if key in filters:
            parts.append(filters[key].isoformat())
    return "_".join(parts) + ".csv"


def _csv(lines: Iterator[str], name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def orders_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every order of the user matching the page's filters, newest first."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    filters = HistoryFilterForm(request.GET).filters()
    rows = filtered_orders(user, filters).iterator(chunk_size=CSV_CHUNK)
    return _csv(_lines(ORDER_HEADER, map(_order_line, rows)), _filename("orders", filters))


@login_required
@require_GET
def trades_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every trade of the user matching the page's filters, newest first."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    filters = HistoryFilterForm(request.GET).filters()
    filters.pop("status", None)
    rows = filtered_trades(user, filters).iterator(chunk_size=CSV_CHUNK)
    lines = (_trade_line(TradeRow.of(trade, user.pk)) for trade in rows)
    return _csv(_lines(TRADE_HEADER, lines), _filename("trades", filters))
