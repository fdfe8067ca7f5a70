"""The market pages of the web UI: the list of markets and one trading page per market.

Thin: they read through the market-data selectors (markets.marketdata) and render. Everything
that moves afterwards (book, trades, candles, the trader's orders and balances) is loaded by
the page's script from the public REST endpoints, the v1 API with the session, and the
websocket streams (docs/web-ui.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from accounts.amounts import format_amount
from accounts.models import User
from accounts.selectors import get_balance
from markets.errors import MarketNotFound
from markets.fees import order_rates, tier_rates
from markets.marketdata.candles import candles
from markets.marketdata.common import places
from markets.marketdata.ticker import Ticker, tickers
from markets.models import Market
from markets.selectors import get_market, list_markets

SPARKLINE_HOURS = 24


@dataclass(frozen=True, slots=True)
class MarketRow:
    market: Market
    ticker: Ticker | None
    sparkline: str  # space-separated closes, oldest first ("" when the market never traded)

    @property
    def stream_symbol(self) -> str:
        return self.market.base.code.lower() + self.market.quote.code.lower()


def _sparkline(market: Market) -> str:
    closes = [k.close for k in candles(market, "1h", limit=SPARKLINE_HOURS)]
    return " ".join(format(c, "f") for c in closes)


@require_safe
def market_list(request: HttpRequest) -> HttpResponse:
    """/markets/: every listed market with its 24 h statistics and a day's sparkline."""
    markets = list(list_markets())
    by_symbol = {t.symbol: t for t in tickers(markets)} if markets else {}
    rows = [
        MarketRow(market=m, ticker=by_symbol.get(m.symbol), sparkline=_sparkline(m))
        for m in markets
    ]
    return render(request, "markets/list.html", {"rows": rows})


def _config(market: Market, user: User | None) -> dict[str, object]:
    """What the trading page's script needs to validate and price an order, as strings."""
    maker, taker = market.maker_fee, market.taker_fee
    balances: dict[str, dict[str, str]] = {}
    if user is not None:
        maker, taker = order_rates(
            market_maker=market.maker_fee,
            market_taker=market.taker_fee,
            tier=tier_rates([user.pk]).get(user.pk),
        )
        for asset in (market.base, market.quote):
            holding = get_balance(user=user, asset=asset)
            balances[asset.code] = {
                "available": format_amount(holding.available, asset.decimals),
                "locked": format_amount(holding.locked, asset.decimals),
            }
    return {
        "symbol": market.symbol,
        "stream": market.base.code.lower() + market.quote.code.lower(),
        "rest_symbol": market.base.code + market.quote.code,
        "base": market.base.code,
        "quote": market.quote.code,
        "base_decimals": market.base.decimals,
        "quote_decimals": market.quote.decimals,
        "tick_size": format(market.tick_size.normalize(), "f"),
        "lot_size": format(market.lot_size.normalize(), "f"),
        "price_places": places(market.tick_size),
        "quantity_places": places(market.lot_size),
        "min_quantity": format(market.min_quantity.normalize(), "f"),
        "max_quantity": format(market.max_quantity.normalize(), "f"),
        "min_notional": format(market.min_notional.normalize(), "f"),
        "price_band_pct": format(market.price_band_pct.normalize(), "f"),
        "status": market.status,
        "maker_fee": format(Decimal(maker).normalize(), "f"),
        "taker_fee": format(Decimal(taker).normalize(), "f"),
        "signed_in": user is not None,
        "balances": balances,
    }


def _labels() -> dict[str, str]:
    """The words the trading page's script shows, in the page's language."""
    return {
        "buy": _("Buy"),
        "sell": _("Sell"),
        "limit": _("Limit"),
        "market": _("Market"),
        "stop_limit": _("Stop-limit"),
        "limit_maker": _("Post-only"),
        "stop_market": _("Stop-market"),
        "new": _("Open"),
        "partially_filled": _("Partially filled"),
        "filled": _("Filled"),
        "canceled": _("Cancelled"),
        "rejected": _("Rejected"),
        "expired": _("Expired"),
        "maker": _("Maker"),
        "taker": _("Taker"),
        "bids": _("Bids"),
        "asks": _("Asks"),
        "placed": _("Order placed."),
        "cancel_requested": _("Cancel requested."),
        "failed": _("The request failed; try again."),
        "required": _("Enter a value."),
        "negative": _("Must be greater than zero."),
        "not_positive": _("Must be greater than zero."),
        "not_number": _("Enter a plain number such as 12.5 (digits and one decimal point)."),
        "too_precise": _("At most %s decimal places."),
        "too_large": _("The number is too large."),
        "off_tick": _("Must be a multiple of the tick size %s."),
        "off_lot": _("Must be a multiple of the lot size %s."),
        "below_min_qty": _("The minimum amount is %s."),
        "above_max_qty": _("The maximum amount is %s."),
        "below_notional": _("The order must be worth at least %s."),
        # The {...} names are replaced by the script, not by Python.
        "fee_preview": _("Fee at most {fee} (maker {maker}%, taker {taker}%)"),
    }


@require_safe
def trade(request: HttpRequest, symbol: str) -> HttpResponse:
    """/trade/<SYMBOL>/: the live trading page of one market (e.g. /trade/BTC-USDT/)."""
    try:
        market = get_market(symbol=symbol)
    except MarketNotFound as exc:
        raise Http404("No such market.") from exc
    if not market.listed:
        raise Http404("No such market.")
    user = request.user if request.user.is_authenticated else None
    others = [m for m in list_markets() if m.pk != market.pk]
    context = {
        "market": market,
        "config": _config(market, user),  # type: ignore[arg-type]  # authenticated: a User
        "others": others,
        "labels": _labels(),
    }
    return render(request, "markets/trade.html", context)
