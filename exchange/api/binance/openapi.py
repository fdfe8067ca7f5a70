"""The compat API's OpenAPI description: parameters, bodies and operation ids.

The compat views read their parameters by hand (base.params: Binance's query-or-form
parameters, each once), so drf-spectacular sees nothing to infer; this module states them
and Binance's response shapes, applied to the view classes after import (the view modules
stay free of documentation). exchange/api/schema.py imports it and then adds the errors
every operation can answer (`{code, msg}`, exchange.api.schema.compat_errors).

Shapes are raw JSON Schema where Binance's are not objects (klines are arrays of arrays,
the tickers an object for `symbol` but an array otherwise). Decimals are strings.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from exchange.api.binance import account, deadman, public
from exchange.api.binance.orders import MAX_LIMIT, RESPONSE_TYPES, STP_MODES, TYPES_IN
from exchange.api.schema import BINANCE_ERROR
from markets.marketdata.intervals import INTERVALS
from trading.models import CLIENT_ORDER_ID_PATTERN

MARKET_TAG = "v3 market data (Binance-compatible)"
TRADE_TAG = "v3 trading and account (Binance-compatible, signed)"
SAPI_TAG = "sapi stubs (Binance-compatible)"
# Excluded from the schema: the catch-all for every path ccxt may call that is not served.
EXCLUDED_VIEWS: tuple[type, ...] = (public.UnsupportedApi,)

# ---------------------------------------------------------------- JSON Schema pieces

DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "example": "0.00100000"}
INT = {"type": "integer", "format": "int64"}
TEXT = {"type": "string"}
BOOL = {"type": "boolean"}


def obj(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema; every property required except `optional`."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:  # OpenAPI 3.0: `required` must not be empty
        schema["required"] = required
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    """Binance answers `symbol` with one object, `symbols` or neither with an array."""
    return {"oneOf": [item, array(item)]}


def ok(schema: dict[str, Any], description: str = "", **example: Any) -> OpenApiResponse:
    examples = [OpenApiExample("example", value=example["value"])] if example else []
    return OpenApiResponse(schema, description=description, examples=examples)


def bad_input(codes: str) -> OpenApiResponse:
    return OpenApiResponse(BINANCE_ERROR, description=f"Bad input; nothing changed. {codes}")


# ---------------------------------------------------------------- parameters

SYMBOL_HELP = "Binance symbol: base and quote asset codes run together, e.g. BTCUSDT"
SYMBOLS_HELP = 'JSON array of distinct symbols, e.g. ["BTCUSDT","ETHUSDT"]; not with symbol'
MAX_MS = public.MAX_MS


def query(
    name: str,
    kind: Any = str,
    description: str = "",
    *,
    required: bool = False,
    enum: list[str] | None = None,
) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        kind,
        OpenApiParameter.QUERY,
        required=required,
        enum=enum,
        description=description,
    )


SYMBOL = query("symbol", description=SYMBOL_HELP, required=True)
SYMBOL_OPTIONAL = query("symbol", description=SYMBOL_HELP)
SYMBOLS = query("symbols", description=SYMBOLS_HELP)
LIMIT = query("limit", int, f"1-{MAX_LIMIT}, default 500")
FROM_ID = query("fromId", int, "trade id to start from (inclusive)")
START_TIME = query("startTime", int, "ms since the epoch, inclusive")
END_TIME = query("endTime", int, "ms since the epoch, inclusive")
TICKER_TYPE = query("type", description="FULL (default) or MINI", enum=["FULL", "MINI"])
ORDER_ID = query("orderId", int, "the order's id (orderId or origClientOrderId)")
ORIG_CLIENT_ORDER_ID = OpenApiParameter(
    "origClientOrderId",
    str,
    OpenApiParameter.QUERY,
    pattern=CLIENT_ORDER_ID_PATTERN,
    description="the client order id",
)

# ---------------------------------------------------------------- response shapes

TRADE = obj(
    {
        "id": INT,
        "price": DECIMAL,
        "qty": DECIMAL,
        "quoteQty": DECIMAL,
        "time": INT,
        "isBuyerMaker": BOOL,
        "isBestMatch": BOOL,
    }
)
AGG_TRADE = obj(
    {"a": INT, "p": DECIMAL, "q": DECIMAL, "f": INT, "l": INT, "T": INT, "m": BOOL, "M": BOOL}
)
KLINE = {
    "type": "array",
    "description": (
        "[open time, open, high, low, close, volume, close time, quote volume, trades, "
        'taker buy volume, taker buy quote volume, "0"]'
    ),
    "minItems": 12,
    "maxItems": 12,
    "items": {"oneOf": [INT, DECIMAL]},
}
KLINE_EXAMPLE = [
    1767225600000,
    "50000.00",
    "50100.00",
    "49900.00",
    "50050.00",
    "1.25000",
    1767225659999,
    "62550.00",
    12,
    "0.60000",
    "30000.00",
    "0",
]
_TICKER_FIELDS = {
    "symbol": TEXT,
    "priceChange": DECIMAL,
    "priceChangePercent": DECIMAL,
    "weightedAvgPrice": DECIMAL,
    "prevClosePrice": DECIMAL,
    "lastPrice": DECIMAL,
    "bidPrice": DECIMAL,
    "bidQty": DECIMAL,
    "askPrice": DECIMAL,
    "askQty": DECIMAL,
    "openPrice": DECIMAL,
    "highPrice": DECIMAL,
    "lowPrice": DECIMAL,
    "volume": DECIMAL,
    "quoteVolume": DECIMAL,
    "openTime": INT,
    "closeTime": INT,
    "firstId": {**INT, "nullable": True},
    "lastId": {**INT, "nullable": True},
    "count": INT,
}
_FULL_ONLY = ("priceChange", "priceChangePercent", "weightedAvgPrice")
_BOOK_ONLY = ("prevClosePrice", "bidPrice", "bidQty", "askPrice", "askQty")
TICKER_24H = obj(_TICKER_FIELDS, optional=_FULL_ONLY + _BOOK_ONLY)
TICKER_ROLLING = obj(
    {k: v for k, v in _TICKER_FIELDS.items() if k not in _BOOK_ONLY}, optional=_FULL_ONLY
)
PRICE = obj({"symbol": TEXT, "price": DECIMAL})
BOOK_TICKER = obj(
    {"symbol": TEXT, "bidPrice": DECIMAL, "bidQty": DECIMAL, "askPrice": DECIMAL, "askQty": DECIMAL}
)
SYMBOL_INFO = obj(
    {
        "symbol": TEXT,
        "status": {"type": "string", "enum": sorted(set(public.STATUSES.values()))},
        "baseAsset": TEXT,
        "baseAssetPrecision": INT,
        "quoteAsset": TEXT,
        "quotePrecision": INT,
        "quoteAssetPrecision": INT,
        "orderTypes": array({"type": "string", "enum": list(public.ORDER_TYPES)}),
        "quoteOrderQtyMarketAllowed": BOOL,
        "cancelReplaceAllowed": BOOL,
        "isSpotTradingAllowed": BOOL,
        "filters": array({"type": "object", "properties": {"filterType": TEXT}}),
        "permissions": array(TEXT),
        "defaultSelfTradePreventionMode": TEXT,
        "allowedSelfTradePreventionModes": array(TEXT),
    }
)
EXCHANGE_INFO = obj(
    {
        "timezone": TEXT,
        "serverTime": INT,
        "rateLimits": array(
            obj(
                {"rateLimitType": TEXT, "interval": TEXT, "intervalNum": INT, "limit": INT},
            )
        ),
        "exchangeFilters": array({"type": "object"}),
        "symbols": array(SYMBOL_INFO),
    }
)
DEPTH = obj(
    {
        "lastUpdateId": INT,
        "bids": array({**array(DECIMAL), "minItems": 2, "maxItems": 2}),
        "asks": array({**array(DECIMAL), "minItems": 2, "maxItems": 2}),
    }
)
_ORDER_FIELDS = {
    "symbol": TEXT,
    "orderId": INT,
    "orderListId": INT,
    "clientOrderId": TEXT,
    "price": DECIMAL,
    "origQty": DECIMAL,
    "executedQty": DECIMAL,
    "cummulativeQuoteQty": DECIMAL,
    "status": {
        "type": "string",
        "enum": ["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"],
    },
    "timeInForce": TEXT,
    "type": TEXT,
    "side": {"type": "string", "enum": ["BUY", "SELL"]},
    "stopPrice": DECIMAL,
    "icebergQty": DECIMAL,
    "time": INT,
    "updateTime": INT,
    "isWorking": BOOL,
    "workingTime": INT,
    "origQuoteOrderQty": DECIMAL,
    "selfTradePreventionMode": TEXT,
}
ORDER = obj(_ORDER_FIELDS)
FILL = obj(
    {
        "price": DECIMAL,
        "qty": DECIMAL,
        "commission": DECIMAL,
        "commissionAsset": TEXT,
        "tradeId": INT,
    }
)
_ACK = ("symbol", "orderId", "orderListId", "clientOrderId")
NEW_ORDER = obj(
    {**_ORDER_FIELDS, "transactTime": INT, "fills": array(FILL)},
    optional=tuple(name for name in (*_ORDER_FIELDS, "fills") if name not in _ACK),
)
CANCELLED = obj(
    {**_ORDER_FIELDS, "origClientOrderId": TEXT, "transactTime": INT},
    optional=("time", "updateTime", "isWorking", "icebergQty", "workingTime"),
)
MY_TRADE = obj(
    {
        "symbol": TEXT,
        "id": INT,
        "orderId": INT,
        "orderListId": INT,
        "price": DECIMAL,
        "qty": DECIMAL,
        "quoteQty": DECIMAL,
        "commission": DECIMAL,
        "commissionAsset": TEXT,
        "time": INT,
        "isBuyer": BOOL,
        "isMaker": BOOL,
        "isBestMatch": BOOL,
    }
)
RATES = obj({"maker": DECIMAL, "taker": DECIMAL, "buyer": DECIMAL, "seller": DECIMAL})
DISCOUNT = obj(
    {
        "enabledForAccount": BOOL,
        "enabledForSymbol": BOOL,
        "discountAsset": TEXT,
        "discount": DECIMAL,
    }
)
ACCOUNT = obj(
    {
        "makerCommission": INT,
        "takerCommission": INT,
        "buyerCommission": INT,
        "sellerCommission": INT,
        "commissionRates": RATES,
        "canTrade": BOOL,
        "canWithdraw": BOOL,
        "canDeposit": BOOL,
        "brokered": BOOL,
        "requireSelfTradePrevention": BOOL,
        "preventSor": BOOL,
        "updateTime": INT,
        "accountType": TEXT,
        "balances": array(obj({"asset": TEXT, "free": DECIMAL, "locked": DECIMAL})),
        "permissions": array(TEXT),
        "uid": INT,
    }
)
COMMISSION = obj(
    {
        "symbol": TEXT,
        "standardCommission": RATES,
        "specialCommission": RATES,
        "taxCommission": RATES,
        "discount": DISCOUNT,
    }
)
TEST_ORDER = obj(
    {
        "standardCommissionForOrder": obj({"maker": DECIMAL, "taker": DECIMAL}),
        "taxCommissionForOrder": obj({"maker": DECIMAL, "taker": DECIMAL}),
        "discount": DISCOUNT,
    },
    optional=("standardCommissionForOrder", "taxCommissionForOrder", "discount"),
)
CANCEL_REPLACE = obj(
    {
        "cancelResult": TEXT,
        "newOrderResult": TEXT,
        "cancelResponse": CANCELLED,
        "newOrderResponse": NEW_ORDER,
    }
)

# ---------------------------------------------------------------- form bodies


def _order_fields() -> dict[str, serializers.Field]:
    """POST /order's parameters (also order/test's and cancelReplace's new order)."""
    decimal = "a plain decimal string (no exponent, sign or spaces)"
    return {
        "symbol": serializers.CharField(help_text=SYMBOL_HELP),
        "side": serializers.ChoiceField(choices=["BUY", "SELL"]),
        "type": serializers.ChoiceField(
            choices=sorted(TYPES_IN),
            help_text="TAKE_PROFIT and TAKE_PROFIT_LIMIT are refused (-1013)",
        ),
        "timeInForce": serializers.ChoiceField(
            choices=["GTC", "IOC", "FOK"],
            required=False,
            help_text="required for LIMIT and STOP_LOSS_LIMIT; LIMIT_MAKER only GTC",
        ),
        "quantity": serializers.CharField(required=False, help_text=decimal),
        "quoteOrderQty": serializers.CharField(
            required=False, help_text=f"MARKET only: spend this much quote; {decimal}"
        ),
        "price": serializers.CharField(required=False, help_text=decimal),
        "stopPrice": serializers.CharField(
            required=False, help_text=f"STOP_LOSS, STOP_LOSS_LIMIT; {decimal}"
        ),
        "newClientOrderId": serializers.RegexField(
            CLIENT_ORDER_ID_PATTERN,
            required=False,
            help_text="your id for the order; a repeat is -2010 Duplicate",
        ),
        "selfTradePreventionMode": serializers.ChoiceField(
            choices=sorted(STP_MODES), required=False
        ),
        "newOrderRespType": serializers.ChoiceField(
            choices=sorted(RESPONSE_TYPES),
            required=False,
            help_text="default FULL for LIMIT and MARKET, ACK for the others",
        ),
    }


def form(name: str, fields: dict[str, serializers.Field]) -> dict[str, Any]:
    return {"application/x-www-form-urlencoded": inline_serializer(name, fields)}


NEW_ORDER_FORM = form("NewOrderForm", _order_fields())
TEST_ORDER_FORM = form(
    "TestOrderForm",
    {
        **_order_fields(),
        "computeCommissionRates": serializers.ChoiceField(
            choices=["true", "false"], required=False
        ),
    },
)
CANCEL_REPLACE_FORM = form(
    "CancelReplaceForm",
    {
        **_order_fields(),
        "cancelReplaceMode": serializers.ChoiceField(choices=["STOP_ON_FAILURE", "ALLOW_FAILURE"]),
        "cancelOrderId": serializers.IntegerField(
            required=False, min_value=0, help_text="cancelOrderId or cancelOrigClientOrderId"
        ),
        "cancelOrigClientOrderId": serializers.RegexField(CLIENT_ORDER_ID_PATTERN, required=False),
    },
)
ORDER_ERRORS = (
    "-1013 filter failure (PRICE_FILTER, LOT_SIZE, NOTIONAL, PERCENT_PRICE_BY_SIDE) or "
    "take-profit refused, -1106 parameter not allowed, -1115 timeInForce, -1116 type, "
    "-1117 side, -2010 insufficient balance / duplicate client id / market closed / "
    "would take (LIMIT_MAKER) / stop would trigger immediately."
)


def _public(operation_id: str, *parameters: OpenApiParameter, **kwargs: Any) -> Any:
    return extend_schema(
        operation_id=operation_id, tags=[MARKET_TAG], parameters=list(parameters), **kwargs
    )


def _signed(operation_id: str, *parameters: OpenApiParameter, **kwargs: Any) -> Any:
    return extend_schema(
        operation_id=operation_id, tags=[TRADE_TAG], parameters=list(parameters), **kwargs
    )


# ---------------------------------------------------------------- market data

extend_schema_view(
    get=_public(
        "ping",
        summary="Test connectivity",
        responses={200: ok(obj({}), "An empty object.", value={})},
    )
)(public.PingApi)
extend_schema_view(
    get=_public(
        "time",
        summary="Server time",
        responses={200: ok(obj({"serverTime": INT}), value={"serverTime": 1767225600000})},
    )
)(public.TimeApi)
extend_schema_view(
    get=_public(
        "exchangeInfo",
        SYMBOL_OPTIONAL,
        SYMBOLS,
        query(
            "symbolStatus",
            description="only markets in this status; not with symbol(s)",
            enum=sorted(set(public.STATUSES.values())),
        ),
        query("permissions", description="SPOT only", enum=["SPOT", '["SPOT"]']),
        summary="Markets and their trading rules (filters), rate limits",
        responses={
            200: ok(EXCHANGE_INFO),
            400: bad_input("-1121 invalid symbol, -1128 symbol(s) with symbolStatus."),
        },
    )
)(public.ExchangeInfoApi)
extend_schema_view(
    get=_public(
        "depth",
        SYMBOL,
        query("limit", int, "levels per side, default 100; above 5000 truncated to 5000"),
        summary="Order book",
        responses={
            200: ok(
                DEPTH,
                "Bids best (highest) first, asks best (lowest) first; [price, quantity].",
                value={"lastUpdateId": 1027024, "bids": [["4.00", "431.00"]], "asks": []},
            )
        },
    )
)(public.DepthApi)
extend_schema_view(
    get=_public("trades", SYMBOL, LIMIT, summary="Recent trades", responses={200: ok(array(TRADE))})
)(public.TradesApi)
extend_schema_view(
    get=_public(
        "historicalTrades",
        SYMBOL,
        LIMIT,
        FROM_ID,
        summary="Older trades (no API key needed here)",
        responses={200: ok(array(TRADE))},
    )
)(public.HistoricalTradesApi)
extend_schema_view(
    get=_public(
        "aggTrades",
        SYMBOL,
        FROM_ID,
        START_TIME,
        END_TIME,
        LIMIT,
        summary="Aggregate trades (one per trade here)",
        responses={
            200: ok(array(AGG_TRADE)),
            400: bad_input(
                "-1023 startTime after endTime, -1127 more than 1 hour between them, "
                "-1128 fromId with a time range."
            ),
        },
    )
)(public.AggTradesApi)
_KLINE_PARAMETERS = (
    SYMBOL,
    query(
        "interval",
        description="kline interval (no 1s: the finest is 1m)",
        required=True,
        enum=list(INTERVALS),
    ),
    START_TIME,
    END_TIME,
    query("timeZone", description="UTC only: 0, +0, -0, 00:00, +00:00, -00:00"),
    LIMIT,
)
_KLINE_RESPONSES = {
    200: ok(array(KLINE), "Ascending by open time.", value=[KLINE_EXAMPLE]),
    400: bad_input("-1120 invalid interval, -1023 startTime after endTime."),
}
extend_schema_view(
    get=_public("klines", *_KLINE_PARAMETERS, summary="Candlesticks", responses=_KLINE_RESPONSES)
)(public.KlinesApi)
extend_schema_view(
    get=_public(
        "uiKlines",
        *_KLINE_PARAMETERS,
        summary="Candlesticks (the same as klines here)",
        responses=_KLINE_RESPONSES,
    )
)(public.UiKlinesApi)
extend_schema_view(
    get=_public(
        "avgPrice",
        SYMBOL,
        summary="Volume-weighted price of the last 5 minutes",
        responses={200: ok(obj({"mins": INT, "price": DECIMAL, "closeTime": INT}))},
    )
)(public.AvgPriceApi)
_MANY = "-1121 invalid symbol, -1128 both symbol and symbols."
extend_schema_view(
    get=_public(
        "ticker24hr",
        SYMBOL_OPTIONAL,
        SYMBOLS,
        TICKER_TYPE,
        summary="24 h rolling tickers",
        responses={
            200: ok(one_or_many(TICKER_24H), "An object for symbol, else an array."),
            400: bad_input(_MANY),
        },
    )
)(public.Ticker24hApi)
extend_schema_view(
    get=_public(
        "ticker",
        SYMBOL_OPTIONAL,
        SYMBOLS,
        query("windowSize", description="1d only (24h accepted)", enum=["1d", "24h"]),
        TICKER_TYPE,
        summary="Rolling-window ticker (symbol or symbols required)",
        responses={
            200: ok(one_or_many(TICKER_ROLLING), "An object for symbol, else an array."),
            400: bad_input(_MANY + " -1102 neither symbol nor symbols."),
        },
    )
)(public.TickerApi)
extend_schema_view(
    get=_public(
        "tickerPrice",
        SYMBOL_OPTIONAL,
        SYMBOLS,
        summary="Last prices",
        responses={200: ok(one_or_many(PRICE)), 400: bad_input(_MANY)},
    )
)(public.TickerPriceApi)
extend_schema_view(
    get=_public(
        "bookTicker",
        SYMBOL_OPTIONAL,
        SYMBOLS,
        summary="Best bid and ask (zeros on an empty side)",
        responses={200: ok(one_or_many(BOOK_TICKER)), 400: bad_input(_MANY)},
    )
)(public.BookTickerApi)
extend_schema(exclude=True)(public.UnsupportedApi)

# ---------------------------------------------------------------- /sapi stubs

extend_schema_view(
    get=extend_schema(
        operation_id="delistSchedule",
        tags=[SAPI_TAG],
        summary="Delisting schedule (always empty)",
        responses={200: ok(array({"type": "object"}), value=[])},
    )
)(public.DelistScheduleApi)
extend_schema_view(
    get=extend_schema(
        operation_id="tradeFee",
        tags=[SAPI_TAG],
        parameters=[SYMBOL_OPTIONAL],
        summary="The key owner's maker and taker rates per market",
        responses={
            200: ok(
                array(obj({"symbol": TEXT, "makerCommission": DECIMAL, "takerCommission": DECIMAL}))
            )
        },
    )
)(public.TradeFeeApi)

# ---------------------------------------------------------------- signed

extend_schema_view(
    get=_signed(
        "account",
        query(
            "omitZeroBalances", description="true: leave out empty balances", enum=["true", "false"]
        ),
        summary="Balances and permissions",
        responses={200: ok(ACCOUNT)},
    )
)(account.AccountApi)
extend_schema_view(
    get=_signed(
        "accountCommission",
        SYMBOL,
        summary="The rates this account's next order in the market pays",
        responses={200: ok(COMMISSION)},
    )
)(account.CommissionApi)
_ORDER_REF = "-2013 no such order (unknown, another user's, another market's), -1102 neither id."
extend_schema_view(
    post=_signed(
        "newOrder",
        request=NEW_ORDER_FORM,
        summary="Place an order",
        description=(
            "Parameters in the form body (or the query string). RESULT and FULL wait a "
            "bounded time for the engine's first outcome, then answer the order as stored."
        ),
        responses={200: ok(NEW_ORDER, "ACK, RESULT or FULL"), 400: bad_input(ORDER_ERRORS)},
    ),
    get=_signed(
        "getOrder",
        SYMBOL,
        ORDER_ID,
        ORIG_CLIENT_ORDER_ID,
        summary="One of your orders",
        responses={200: ok(ORDER), 400: bad_input(_ORDER_REF)},
    ),
    delete=_signed(
        "cancelOrder",
        SYMBOL,
        ORDER_ID,
        ORIG_CLIENT_ORDER_ID,
        summary="Cancel an order",
        responses={
            200: ok(CANCELLED, "The order as the engine left it within the bounded wait."),
            400: bad_input(_ORDER_REF + " -2011 the order is no longer open."),
        },
    ),
)(account.OrderApi)
extend_schema_view(
    post=_signed(
        "testNewOrder",
        request=TEST_ORDER_FORM,
        summary="Check an order without placing it",
        responses={200: ok(TEST_ORDER), 400: bad_input(ORDER_ERRORS)},
    )
)(account.TestOrderApi)
extend_schema_view(
    post=_signed(
        "cancelReplace",
        request=CANCEL_REPLACE_FORM,
        summary="Cancel an order, then place a new one",
        responses={
            200: ok(CANCEL_REPLACE),
            400: bad_input(
                ORDER_ERRORS + " -2021 partially failed, -2022 failed: the body then also has "
                "`data` {cancelResult, newOrderResult, cancelResponse, newOrderResponse}."
            ),
        },
    )
)(account.CancelReplaceApi)
extend_schema_view(
    get=_signed(
        "openOrders",
        SYMBOL_OPTIONAL,
        summary="Your open orders (weight 80 without a symbol)",
        responses={200: ok(array(ORDER))},
    ),
    delete=_signed(
        "cancelOpenOrders",
        SYMBOL,
        summary="Cancel every open order in a market",
        responses={
            200: ok(array(CANCELLED)),
            400: bad_input("-2011 no open order in the market."),
        },
    ),
)(account.OpenOrdersApi)
_PAGE_ERRORS = "-1127 endTime before startTime or more than 24 h after it."
extend_schema_view(
    get=_signed(
        "allOrders",
        SYMBOL,
        query("orderId", int, "from this order id up"),
        START_TIME,
        END_TIME,
        LIMIT,
        summary="Your orders in a market, oldest first",
        responses={200: ok(array(ORDER)), 400: bad_input(_PAGE_ERRORS)},
    )
)(account.AllOrdersApi)
extend_schema_view(
    get=_signed(
        "myTrades",
        SYMBOL,
        query("orderId", int, "only this order's trades"),
        START_TIME,
        END_TIME,
        FROM_ID,
        LIMIT,
        summary="Your trades in a market, oldest first",
        responses={
            200: ok(array(MY_TRADE), "One row per side you were on (two on a self-trade)."),
            400: bad_input(_PAGE_ERRORS + " -1106 fromId with orderId."),
        },
    )
)(account.MyTradesApi)
extend_schema_view(post=extend_schema(tags=[TRADE_TAG]))(deadman.CountdownCancelAllApi)
