"""Public compat endpoints (market data), Binance's GET /api/v3/... shapes and weights.

Every view parses its parameters with base.params (duplicates refused), calls one
markets.selectors reader and renders Binance's field names with string decimals. The
weight of a request (Binance's, e.g. depth by limit, tickers by symbol count) is worked
out from the raw parameters before the rate limiter charges it; a request whose
parameters are malformed is charged the endpoint's base weight and then refused.

What differs from Binance (docs/api/compat.md says it for partners):

* status: TRADING; a CANCEL_ONLY market is HALT (Binance: trading halted, cancels still
  accepted), a HALTED one BREAK (Binance: unavailable for trading); ccxt reads both as
  inactive.
* orderTypes: no TAKE_PROFIT(_LIMIT): the engine's stops trigger only in the stop-loss
  direction (a buy stop when the price rises to it, a sell stop when it falls to it).
* aggTrades: one aggregate per trade (a = f = l = the trade's id).
* klines: no 1s interval (the finest stored candle is 1m); timeZone only 0.
* ticker (rolling): windowSize 1d only (the ticker selector's window).
* avgPrice: the volume-weighted price of the last five 1m klines (the current one
  included), the last price when they hold no trade.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import TooManyFieldsSent
from django.urls import URLPattern, path, re_path
from rest_framework.request import Request
from rest_framework.response import Response

from exchange import clock
from exchange.api import ratelimit
from exchange.api.binance import errors
from exchange.api.binance.base import (
    BinanceView,
    SignedView,
    binance_symbol,
    fmt,
    integer,
    ms,
    params,
    resolve_symbol,
    text,
)
from exchange.api.binance.errors import BinanceError, illegal, mandatory
from exchange.api.binance.orders import TYPES_IN
from markets import selectors
from markets.fees import order_rates, tier_rates
from markets.marketdata.common import places
from markets.marketdata.intervals import INTERVALS
from markets.models import Market, MarketStatus

MAX_DEPTH = 5000  # Binance truncates a larger depth limit to this, and so do we
MAX_ROWS = 1000  # trades, aggTrades, klines
DEFAULT_ROWS = 500
AGG_WINDOW = timedelta(hours=1)  # aggTrades' startTime..endTime, Binance's -1127 rule
AVG_PRICE_MINUTES = 5
MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: the last instant datetime can hold
# What the order endpoints map onto the engine (orders.TYPES_IN, Binance's alphabetical
# order). No TAKE_PROFIT(_LIMIT): see the module docstring.
ORDER_TYPES = tuple(sorted(TYPES_IN))
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
STATUSES: dict[str, str] = {
    MarketStatus.TRADING: "TRADING",
    MarketStatus.CANCEL_ONLY: "HALT",
    MarketStatus.HALTED: "BREAK",
}
# Prices, quantities and notionals are DecimalField(36, 18): below 10^18 (validation).
_CEILING = Decimal(10) ** 18
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COMBINATION = "Combination of optional parameters invalid."


class PublicView(BinanceView):
    """A market-data view: parameters parsed once, weight from them, then the handler."""

    values: dict[str, str]

    def weigh(self, values: dict[str, str]) -> int:
        """This request's weight from its raw parameters (never raises)."""
        return type(self).weight

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        refused: BinanceError | None = None
        try:
            self.values = params(request)
            self.weight = self.weigh(self.values)
        except BinanceError as exc:  # charged the base weight, then refused
            refused = exc
        try:
            super().initial(request, *args, **kwargs)
        except TooManyFieldsSent:  # DRF's content negotiation reads request.GET
            raise BinanceError(-1101, "Too many parameters sent for this endpoint.") from None
        if refused is not None:
            raise refused


# ------------------------------------------------------------------ parameters


def _time(values: dict[str, str], name: str) -> datetime | None:
    """A ms timestamp parameter as an aware datetime."""
    value = integer(values, name, maximum=MAX_MS)
    return None if value is None else _EPOCH + timedelta(milliseconds=value)


def _range(values: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    start, end = _time(values, "startTime"), _time(values, "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    return start, end


def _limit(values: dict[str, str], *, default: int, maximum: int = MAX_ROWS) -> int:
    value = integer(values, "limit", minimum=1, maximum=maximum)
    return default if value is None else value


def _symbol_list(raw: str) -> list[str]:
    """`symbols`: a JSON array of distinct symbol strings (Binance's form)."""
    legal = '["BTCUSDT","ETHUSDT",...]'
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise illegal("symbols", legal) from None
    if not isinstance(parsed, list) or not parsed or not all(isinstance(s, str) for s in parsed):
        raise illegal("symbols", legal)
    if len(set(parsed)) != len(parsed):
        raise BinanceError(-1101, "Duplicate values for a parameter detected: symbols.")
    return parsed


def _resolve_many(symbols: Sequence[str]) -> list[Market]:
    """The markets of Binance symbols, in the order given, in one query; -1121 if one is unknown."""
    candidates: dict[str, str] = {}
    for symbol in symbols:
        if not symbol.isascii() or not symbol.isalnum() or len(symbol) > 40:
            raise BinanceError(-1121, errors.BAD_SYMBOL)
        for i in range(1, len(symbol)):
            candidates[f"{symbol[:i]}-{symbol[i:]}"] = symbol
    found = {
        binance_symbol(m): m
        for m in Market.objects.select_related("base", "quote").filter(symbol__in=candidates)
    }
    if any(symbol not in found for symbol in symbols):
        raise BinanceError(-1121, errors.BAD_SYMBOL)
    return [found[symbol] for symbol in symbols]


def _markets(values: dict[str, str]) -> list[Market] | None:
    """`symbol` (one market) or `symbols` (a JSON array), or None for neither."""
    one, many = text(values, "symbol"), text(values, "symbols")
    if one is not None and many is not None:
        raise BinanceError(-1128, COMBINATION)
    if one is not None:
        return [resolve_symbol(one)]
    if many is not None:
        return _resolve_many(_symbol_list(many))
    return None


def _symbol_count(values: dict[str, str]) -> int | None:
    """How many symbols the request names (None: all), for its weight; lenient."""
    if values.get("symbol"):
        return 1
    raw = values.get("symbols")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return len(parsed) if isinstance(parsed, list) else None


# ------------------------------------------------------------------ rendering


def _s(value: Decimal) -> str:
    """A selector's already-quantized Decimal as Binance's string."""
    return format(value, "f")


def _below_ceiling(step: Decimal) -> Decimal:
    return _CEILING - Decimal(1).scaleb(-places(step))


def _filters(market: Market) -> list[dict[str, object]]:
    price, quantity = places(market.tick_size), places(market.lot_size)
    quote = market.quote.decimals
    min_quantity = max(market.min_quantity, market.lot_size)
    lots = {
        "minQty": fmt(min_quantity, quantity),
        "maxQty": fmt(market.max_quantity, quantity),
        "stepSize": fmt(market.lot_size, quantity),
    }
    out: list[dict[str, object]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(market.tick_size, price),
            "maxPrice": fmt(_below_ceiling(market.tick_size), price),
            "tickSize": fmt(market.tick_size, price),
        },
        {"filterType": "LOT_SIZE", **lots},
        {"filterType": "MARKET_LOT_SIZE", **lots},
        {
            "filterType": "NOTIONAL",
            "minNotional": fmt(market.min_notional, quote),
            "applyMinToMarket": True,
            "maxNotional": fmt(_CEILING - Decimal(1).scaleb(-quote), quote),
            "applyMaxToMarket": False,
            "avgPriceMins": 0,  # checked against the last price, not an average
        },
    ]
    if market.price_band_pct > 0:  # limit prices within ±pct of the last price, both sides
        width = market.price_band_pct / 100
        up, down = fmt(1 + width, 4), fmt(1 - width, 4)
        out.append(
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": up,
                "bidMultiplierDown": down,
                "askMultiplierUp": up,
                "askMultiplierDown": down,
                "avgPriceMins": 0,  # Binance: 0 means the last price
            }
        )
    return out


def _symbol_info(market: Market) -> dict[str, object]:
    base, quote = market.base.decimals, market.quote.decimals
    return {
        "symbol": binance_symbol(market),
        "status": STATUSES.get(market.status, "BREAK"),
        "baseAsset": market.base.code,
        "baseAssetPrecision": base,
        "quoteAsset": market.quote.code,
        "quotePrecision": quote,
        "quoteAssetPrecision": quote,
        "baseCommissionPrecision": base,
        "quoteCommissionPrecision": quote,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,  # POST /api/v3/order/cancelReplace (account.py)
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _filters(market),
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": list(STP_MODES),
    }


def _ticker_body(ticker: Any, market: Market, *, full: bool, book: bool) -> dict[str, object]:
    """Binance's 24 h ticker fields (`full` False: the MINI subset; `book`: bid/ask too)."""
    price, quantity = places(market.tick_size), places(market.lot_size)
    out: dict[str, object] = {"symbol": binance_symbol(market)}
    if full:
        out |= {
            "priceChange": _s(ticker.change),
            "priceChangePercent": _s(ticker.change_percent),
            "weightedAvgPrice": _s(ticker.weighted_average),
        }
        if book:
            out["prevClosePrice"] = _s(ticker.prev_close)
    out["lastPrice"] = _s(ticker.last)
    if full and book:
        out |= {
            "bidPrice": fmt(ticker.bid_price, price),
            "bidQty": fmt(ticker.bid_quantity, quantity),
            "askPrice": fmt(ticker.ask_price, price),
            "askQty": fmt(ticker.ask_quantity, quantity),
        }
    return out | {
        "openPrice": _s(ticker.open),
        "highPrice": _s(ticker.high),
        "lowPrice": _s(ticker.low),
        "volume": _s(ticker.volume),
        "quoteVolume": _s(ticker.quote_volume),
        "openTime": ms(ticker.open_time),
        "closeTime": ms(ticker.close_time),
        "firstId": ticker.first_trade_id,
        "lastId": ticker.last_trade_id,
        "count": ticker.trade_count,
    }


def _ticker_type(values: dict[str, str]) -> bool:
    """`type` FULL (default) or MINI: True for FULL."""
    kind = text(values, "type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise illegal("type", "FULL, MINI")
    return kind == "FULL"


def _one_or_many(markets: list[Market] | None, body: list[Any], values: dict[str, str]) -> Any:
    """Binance answers `symbol` with an object, `symbols` or nothing with an array."""
    return body[0] if markets is not None and values.get("symbol") else body


# ------------------------------------------------------------------ general


class PingApi(PublicView):
    def get(self, request: Request) -> Response:
        return Response({})


class TimeApi(PublicView):
    def get(self, request: Request) -> Response:
        return Response({"serverTime": ms(clock.now())})


class ExchangeInfoApi(PublicView):
    """The listed markets (or those named: `symbol`, `symbols`) with their rules."""

    weight = 20

    def get(self, request: Request) -> Response:
        markets = _markets(self.values)
        wanted = text(self.values, "symbolStatus")
        if wanted is not None:
            if markets is not None:
                raise BinanceError(-1128, COMBINATION)
            if wanted not in STATUSES.values():
                raise illegal("symbolStatus", ", ".join(STATUSES.values()))
        permissions = text(self.values, "permissions")
        if permissions is not None and permissions not in ("SPOT", '["SPOT"]'):
            raise illegal("permissions", "SPOT")  # there is only the spot market here
        if markets is None:
            markets = list(selectors.list_markets())
        symbols = [_symbol_info(m) for m in markets]
        if wanted is not None:
            symbols = [s for s in symbols if s["status"] == wanted]
        return Response(
            {
                "timezone": "UTC",
                "serverTime": ms(clock.now()),
                "rateLimits": ratelimit.published_limits(),
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )


# ------------------------------------------------------------------ book and trades


def _depth_limit(values: dict[str, str]) -> int:
    value = integer(values, "limit", minimum=1)
    return 100 if value is None else min(value, MAX_DEPTH)


class DepthApi(PublicView):
    """The book's top `limit` levels per side and lastUpdateId (the diffs' sequence)."""

    weight = 5

    def weigh(self, values: dict[str, str]) -> int:
        try:
            limit = _depth_limit(values)
        except BinanceError:
            return self.weight
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        book = selectors.depth(market, limit=_depth_limit(self.values))
        return Response(
            {
                "lastUpdateId": book.last_update_id,
                "bids": [[_s(p), _s(q)] for p, q in book.bids],
                "asks": [[_s(p), _s(q)] for p, q in book.asks],
            }
        )


def _trade_rows(trades: list[Any]) -> list[dict[str, object]]:
    return [
        {
            "id": t.id,
            "price": _s(t.price),
            "qty": _s(t.quantity),
            "quoteQty": _s(t.quote_quantity),
            "time": ms(t.time),
            "isBuyerMaker": t.is_buyer_maker,
            "isBestMatch": True,
        }
        for t in trades
    ]


class TradesApi(PublicView):
    """The latest `limit` trades."""

    weight = 25

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        limit = _limit(self.values, default=DEFAULT_ROWS)
        return Response(_trade_rows(selectors.recent_trades(market, limit=limit)))


class HistoricalTradesApi(PublicView):
    """Trades from `fromId` on (the latest without it). No API key needed here."""

    weight = 25

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        limit = _limit(self.values, default=DEFAULT_ROWS)
        from_id = integer(self.values, "fromId")
        trades = selectors.recent_trades(market, from_id=from_id, limit=limit)
        return Response(_trade_rows(trades))


class AggTradesApi(PublicView):
    """Aggregate trades: here one per trade (a = f = l = the trade id)."""

    weight = 4

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        limit = _limit(self.values, default=DEFAULT_ROWS)
        from_id = integer(self.values, "fromId")
        start, end = _range(self.values)
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(-1128, COMBINATION)
        if start is not None and end is not None and end - start > AGG_WINDOW:
            raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
        trades = selectors.recent_trades(market, from_id=from_id, start=start, end=end, limit=limit)
        return Response(
            [
                {
                    "a": t.id,
                    "p": _s(t.price),
                    "q": _s(t.quantity),
                    "f": t.id,
                    "l": t.id,
                    "T": ms(t.time),
                    "m": t.is_buyer_maker,
                    "M": True,
                }
                for t in trades
            ]
        )


# ------------------------------------------------------------------ klines


def _interval(values: dict[str, str]) -> str:
    name = text(values, "interval", required=True)
    assert name is not None  # noqa: S101 - required
    if name == "1s":
        raise BinanceError(-1120, "Invalid interval. 1s klines are not offered; the finest is 1m.")
    if name not in INTERVALS:
        raise BinanceError(-1120, "Invalid interval.")
    return name


class KlinesApi(PublicView):
    """Binance's kline arrays, ascending by open time (the open kline included)."""

    weight = 2

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        interval = _interval(self.values)
        start, end = _range(self.values)
        zone = text(self.values, "timeZone")
        if zone is not None and zone not in ("0", "+0", "-0", "00:00", "+00:00", "-00:00"):
            raise illegal("timeZone", "0 (UTC only)")
        limit = _limit(self.values, default=DEFAULT_ROWS)
        klines = selectors.candles(market, interval, start=start, end=end, limit=limit)
        return Response(
            [
                [
                    ms(k.open_time),
                    _s(k.open),
                    _s(k.high),
                    _s(k.low),
                    _s(k.close),
                    _s(k.volume),
                    ms(k.close_time),
                    _s(k.quote_volume),
                    k.trade_count,
                    _s(k.taker_buy_volume),
                    _s(k.taker_buy_quote_volume),
                    "0",
                ]
                for k in klines
            ]
        )


class UiKlinesApi(KlinesApi):
    """Binance's chart-oriented klines: here the same as /klines."""


class AvgPriceApi(PublicView):
    """The volume-weighted price of the last five 1m klines (the last price without trades)."""

    weight = 2

    def get(self, request: Request) -> Response:
        market = resolve_symbol(text(self.values, "symbol"))
        klines = selectors.candles(market, "1m", limit=AVG_PRICE_MINUTES)
        volume = sum((k.volume for k in klines), Decimal(0))
        quote = sum((k.quote_volume for k in klines), Decimal(0))
        price = quote / volume if volume else (market.last_price or Decimal(0))
        now = clock.now()
        return Response(
            {
                "mins": AVG_PRICE_MINUTES,
                "price": fmt(price, market.quote.decimals),
                "closeTime": ms(min(klines[-1].close_time, now) if klines else now),
            }
        )


# ------------------------------------------------------------------ tickers


class Ticker24hApi(PublicView):
    """24 h rolling tickers: an object for `symbol`, an array for `symbols` or none."""

    weight = 80

    def weigh(self, values: dict[str, str]) -> int:
        count = _symbol_count(values)
        return 80 if count is None or count > 100 else 2 if count <= 20 else 40

    def get(self, request: Request) -> Response:
        markets = _markets(self.values)
        full = _ticker_type(self.values)
        listed = list(selectors.list_markets()) if markets is None else markets
        by_symbol = {m.symbol: m for m in listed}
        body = [
            _ticker_body(row, by_symbol[row.symbol], full=full, book=True)
            for row in selectors.tickers(listed)
        ]
        return Response(_one_or_many(markets, body, self.values))


class TickerApi(PublicView):
    """The rolling-window ticker; windowSize 1d only (the ticker selector's window)."""

    weight = 4

    def weigh(self, values: dict[str, str]) -> int:
        count = _symbol_count(values) or 1
        return min(4 * count, 200)

    def get(self, request: Request) -> Response:
        markets = _markets(self.values)
        if markets is None:
            raise mandatory("symbol")
        window = text(self.values, "windowSize") or "1d"
        if window not in ("1d", "24h"):
            raise illegal("windowSize", "1d (the only window offered here)")
        full = _ticker_type(self.values)
        by_symbol = {m.symbol: m for m in markets}
        body = [
            _ticker_body(row, by_symbol[row.symbol], full=full, book=False)
            for row in selectors.tickers(markets)
        ]
        return Response(_one_or_many(markets, body, self.values))


class TickerPriceApi(PublicView):
    """The last price of a market (`symbol`), of some (`symbols`) or of every listed one."""

    weight = 4

    def weigh(self, values: dict[str, str]) -> int:
        return 2 if values.get("symbol") else 4

    def get(self, request: Request) -> Response:
        markets = _markets(self.values)
        listed = list(selectors.list_markets()) if markets is None else markets
        body = [
            {
                "symbol": binance_symbol(m),
                "price": fmt(m.last_price, places(m.tick_size)),
            }
            for m in listed
        ]
        return Response(_one_or_many(markets, body, self.values))


class BookTickerApi(PublicView):
    """The best bid and ask (zeros on an empty side)."""

    weight = 4

    def weigh(self, values: dict[str, str]) -> int:
        return 2 if values.get("symbol") else 4

    def get(self, request: Request) -> Response:
        markets = _markets(self.values)
        listed = list(selectors.list_markets()) if markets is None else markets
        by_symbol = {m.symbol: m for m in listed}
        body = []
        for row in selectors.book_tickers(listed):
            market = by_symbol[row.symbol]
            price, quantity = places(market.tick_size), places(market.lot_size)
            body.append(
                {
                    "symbol": binance_symbol(market),
                    "bidPrice": fmt(row.bid_price, price),
                    "bidQty": fmt(row.bid_quantity, quantity),
                    "askPrice": fmt(row.ask_price, price),
                    "askQty": fmt(row.ask_quantity, quantity),
                }
            )
        return Response(_one_or_many(markets, body, self.values))


# ------------------------------------------------------------------ /sapi stubs, catch-all


class DelistScheduleApi(SignedView, PublicView):
    """freqtrade's delisting check: nothing is scheduled for delisting."""

    weight = 100
    required_scope = "read"

    def get(self, request: Request) -> Response:
        return Response([])


class TradeFeeApi(SignedView, PublicView):
    """The key owner's (maker, taker) rates per listed market (or `symbol`), as rates."""

    weight = 1
    required_scope = "read"

    def get(self, request: Request) -> Response:
        symbol = text(self.values, "symbol")
        markets = [resolve_symbol(symbol)] if symbol else list(selectors.list_markets())
        user_id = int(request.user.pk or 0)  # authenticated: SignedView's permission
        tier = tier_rates([user_id]).get(user_id)
        body = []
        for market in markets:
            maker, taker = order_rates(
                market_maker=market.maker_fee, market_taker=market.taker_fee, tier=tier
            )
            body.append(
                {
                    "symbol": binance_symbol(market),
                    "makerCommission": _s(maker.normalize()),
                    "takerCommission": _s(taker.normalize()),
                }
            )
        return Response(body)


class UnsupportedApi(BinanceView):  # BinanceView: no parameters parsed, whatever the body
    """Every path ccxt may call that this exchange does not serve (urls.api's other keys).

    404 with -1020 "This operation is not supported.": ccxt maps -1020 to BadRequest (an
    ExchangeError, not retried), whereas a DRF or HTML 404 would be ExchangeNotAvailable
    (a NetworkError, which bots retry forever), and -1000 OperationFailed (which freqtrade
    treats as temporary).
    """

    def _refuse(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise BinanceError(-1020, "This operation is not supported.", 404)

    get = post = put = delete = patch = _refuse
    options = _refuse  # type: ignore[assignment]  # OPTIONS too: no metadata for nothing


urls: list[URLPattern] = [
    path("ping", PingApi.as_view(), name="compat-ping"),
    path("time", TimeApi.as_view(), name="compat-time"),
    path("exchangeInfo", ExchangeInfoApi.as_view(), name="compat-exchange-info"),
    path("depth", DepthApi.as_view(), name="compat-depth"),
    path("trades", TradesApi.as_view(), name="compat-trades"),
    path("historicalTrades", HistoricalTradesApi.as_view(), name="compat-historical-trades"),
    path("aggTrades", AggTradesApi.as_view(), name="compat-agg-trades"),
    path("klines", KlinesApi.as_view(), name="compat-klines"),
    path("uiKlines", UiKlinesApi.as_view(), name="compat-ui-klines"),
    path("avgPrice", AvgPriceApi.as_view(), name="compat-avg-price"),
    path("ticker/24hr", Ticker24hApi.as_view(), name="compat-ticker-24hr"),
    path("ticker/price", TickerPriceApi.as_view(), name="compat-ticker-price"),
    path("ticker/bookTicker", BookTickerApi.as_view(), name="compat-book-ticker"),
    path("ticker", TickerApi.as_view(), name="compat-ticker"),
]

# Mounted by exchange/urls.py at the root: the two /sapi stubs, then the catch-alls (any
# other /sapi path, and /unsupported/... for the urls.api keys pointed there).
root_urls: list[URLPattern] = [
    path("sapi/v1/spot/delist-schedule", DelistScheduleApi.as_view(), name="compat-delist"),
    path("sapi/v1/asset/tradeFee", TradeFeeApi.as_view(), name="compat-trade-fee"),
    re_path(r"^unsupported(?:/.*)?$", UnsupportedApi.as_view(), name="compat-unsupported"),
    re_path(r"^sapi/", UnsupportedApi.as_view(), name="compat-sapi-unsupported"),  # the rest
]
