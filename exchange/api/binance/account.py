"""Signed compat endpoints: account, commission, orders, open orders, all orders, my trades.

Each view parses its parameters (base.params: each name once), calls one service or
selector, and renders Binance's shape (orders.py). Scopes: GETs need the key's "read",
POST and DELETE its "trade" (exchange.api.auth's default by method).

Ids: `orderId` is Order.pk; an id or client id of another user's order answers -2013
"Order does not exist." exactly as a missing one, and so does an order of another symbol.

Responses that report an engine outcome (POST /order RESULT and FULL, DELETE /order,
DELETE /openOrders, cancelReplace) wait at most settings.API_ORDER_RESULT_WAIT_SECONDS
(orders.wait_for_outcome) for the matching loop; when the wait runs out they answer with the
order as stored at that moment (status NEW, or still open for a cancel), and the client
polls GET /order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl

from django.urls import URLPattern, path
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey, Asset, User
from accounts.selectors import list_balances
from exchange.api.binance import orders as compat
from exchange.api.binance.base import (
    SignedView,
    binance_symbol,
    fmt,
    integer,
    ms,
    params,
    resolve_symbol,
    text,
)
from exchange.api.binance.errors import NO_SUCH_ORDER, UNKNOWN_ORDER, BinanceError, illegal
from exchange.api.binance.errors import from_domain_error as binance_error
from exchange.errors import DomainError
from markets.fees import order_rates, tier_rates
from markets.models import Market, MarketStatus
from trading.errors import OrderNotFound
from trading.models import Order, OrderStatus
from trading.selectors import find_order_by_client_id, get_order, list_orders, list_user_trades
from trading.services.orders import cancel_all, cancel_order, place_order
from trading.validation import check_order_spec

RATE_PLACES = 8
MAX_TIME_MS = 253402300799999  # 9999-12-31: anything later is not a time


def _user(request: Request) -> User:
    # SignedView's IsAuthenticated has run: the key's owner.
    return cast(User, request.user)


def _rates(user: User, market: Market) -> tuple[Decimal, Decimal]:
    tier = tier_rates([user.pk]).get(user.pk)
    return order_rates(market_maker=market.maker_fee, market_taker=market.taker_fee, tier=tier)


def _worst_rates(user: User) -> tuple[Decimal, Decimal]:
    """The highest (maker, taker) the user pays in any trading market (min of market and
    tier per market): /account has no symbol; /account/commission gives the exact ones."""
    tier = tier_rates([user.pk]).get(user.pk)
    markets = Market.objects.filter(status=MarketStatus.TRADING).values_list(
        "maker_fee", "taker_fee"
    )
    pairs = [order_rates(market_maker=m, market_taker=t, tier=tier) for m, t in markets]
    if not pairs:
        return tier if tier is not None else (Decimal(0), Decimal(0))
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _commission_rates(maker: Decimal, taker: Decimal) -> dict[str, str]:
    zero = fmt(None, RATE_PLACES)
    return {
        "maker": fmt(maker, RATE_PLACES),
        "taker": fmt(taker, RATE_PLACES),
        "buyer": zero,
        "seller": zero,
    }


class AccountApi(SignedView):
    """GET /api/v3/account: balances (every active asset, free/locked) and permissions."""

    weight = 20

    def get(self, request: Request) -> Response:
        values = params(request)
        omit = text(values, "omitZeroBalances")
        if omit not in (None, "true", "false"):
            raise illegal("omitZeroBalances", "true, false")
        user, key = _user(request), cast(ApiKey, request.auth)
        rows = {b.asset_id: b for b in list_balances(user=user)}
        balances = []
        for asset in Asset.objects.filter(is_active=True).order_by("code"):
            row = rows.get(asset.pk)
            free = row.available if row else Decimal(0)
            locked = row.locked if row else Decimal(0)
            if omit == "true" and not free and not locked:
                continue
            balances.append(
                {
                    "asset": asset.code,
                    "free": fmt(free, asset.decimals),
                    "locked": fmt(locked, asset.decimals),
                }
            )
        maker, taker = _worst_rates(user)
        updated = max((b.updated_at for b in rows.values()), default=user.date_joined)
        can_trade = bool(key.can_trade) and not user.is_frozen
        return Response(
            {
                "makerCommission": int(maker * 10000),
                "takerCommission": int(taker * 10000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": _commission_rates(maker, taker),
                "canTrade": can_trade,
                "canWithdraw": bool(key.can_withdraw) and not user.is_frozen,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": ms(updated),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": user.pk,
            }
        )


class CommissionApi(SignedView):
    """GET /api/v3/account/commission?symbol=: the rates this user's next order there pays."""

    weight = 20

    def get(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        maker, taker = _rates(_user(request), market)
        zero = _commission_rates(Decimal(0), Decimal(0))
        return Response(
            {
                "symbol": binance_symbol(market),
                "standardCommission": _commission_rates(maker, taker),
                "specialCommission": zero,
                "taxCommission": zero,
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "",
                    "discount": fmt(None, RATE_PLACES),
                },
            }
        )


def _render_placed(order: Order, response_type: str) -> Response:
    if response_type == "ACK":
        return Response(compat.order_result(order, response_type="ACK"))
    order = compat.wait_for_outcome(order)
    if order.status == OrderStatus.REJECTED and order.reject_reason == "would_take":
        raise BinanceError(-2010, "Order would immediately match and take.")
    fills = compat.fills_of(order) if response_type == "FULL" else []
    return Response(compat.order_result(order, response_type=response_type, fills=fills))


class OrderApi(SignedView):
    """POST (place), GET (query) and DELETE (cancel) /api/v3/order."""

    weight = 1

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.weight = 4 if request.method == "GET" else 1  # Binance's weights
        super().initial(request, *args, **kwargs)

    def order_count(self, request: Request) -> int:
        """Orders this request places, for exchange.api.ratelimit."""
        return 1 if request.method == "POST" else 0

    def post(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        parsed = compat.new_order(values, market=market)
        order = place_order(user=_user(request), market=market, spec=parsed.spec)
        return _render_placed(order, parsed.response_type)

    def get(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        order = _own_order(_user(request), values, market, prefix="orig")
        return Response(compat.order_object(order))

    def delete(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        order = _own_order(_user(request), values, market, prefix="orig")
        cancel_order(user=_user(request), order_id=order.pk)
        return Response(_cancelled(compat.wait_for_outcome(order, terminal=True)))


def _own_order(user: User, values: dict[str, str], market: Market, *, prefix: str) -> Order:
    """The user's order named by orderId (or <prefix>ClientOrderId) in `market`; -2013 for
    an unknown id, another user's, or another market's alike."""
    id_name = "orderId" if prefix == "orig" else "cancelOrderId"
    coid_name = f"{prefix}ClientOrderId" if prefix == "orig" else "cancelOrigClientOrderId"
    order_id = integer(values, id_name)
    coid = text(values, coid_name)
    if order_id is None and coid is None:
        raise BinanceError(
            -1102, f"Param '{coid_name}' or '{id_name}' must be sent, but both were empty/null!"
        )
    try:
        order: Order | None = (
            get_order(user=user, order_id=order_id)
            if order_id is not None
            else find_order_by_client_id(user=user, client_order_id=coid or "")
        )
    except OrderNotFound:
        order = None
    if order is None or order.market_id != market.pk:
        raise BinanceError(-2013, NO_SUCH_ORDER)
    if order_id is not None and coid is not None and order.client_order_id != coid:
        raise BinanceError(-2013, NO_SUCH_ORDER)
    order.market = market  # with its assets loaded, for rendering
    return order


def _cancelled(order: Order) -> dict[str, Any]:
    """DELETE /order's body: the order as the engine left it (CANCELED, or FILLED when a
    fill got there first, or still NEW/PARTIALLY_FILLED when the wait ran out)."""
    body = compat.order_object(order)
    for name in ("time", "updateTime", "isWorking", "icebergQty", "workingTime"):
        body.pop(name)
    return {
        "symbol": body["symbol"],
        "origClientOrderId": order.client_order_id,
        "transactTime": ms(order.updated_at),
        **body,
    }


class TestOrderApi(SignedView):
    """POST /api/v3/order/test: every check POST /order makes before the hold, nothing placed.
    (Balance is not checked, as on Binance.) `computeCommissionRates=true` adds the rates."""

    weight = 1

    def post(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        parsed = compat.new_order(values, market=market)
        check_order_spec(market=market, spec=parsed.spec)
        compute = text(values, "computeCommissionRates")
        if compute not in (None, "true", "false"):
            raise illegal("computeCommissionRates", "true, false")
        if compute != "true":
            return Response({})
        maker, taker = _rates(_user(request), market)
        zero = fmt(None, RATE_PLACES)
        return Response(
            {
                "standardCommissionForOrder": {
                    "maker": fmt(maker, RATE_PLACES),
                    "taker": fmt(taker, RATE_PLACES),
                },
                "taxCommissionForOrder": {"maker": zero, "taker": zero},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "",
                    "discount": zero,
                },
            }
        )


class OpenOrdersApi(SignedView):
    """GET /api/v3/openOrders (symbol optional) and DELETE (cancel all in a symbol)."""

    weight = 6

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Binance: 6 with a symbol, 80 for every symbol; cancelling all is 1.
        if request.method == "DELETE":
            self.weight = 1
        elif not dict(parse_qsl(request.META.get("QUERY_STRING", ""))).get("symbol"):
            self.weight = 80
        super().initial(request, *args, **kwargs)

    def get(self, request: Request) -> Response:
        values = params(request)
        symbol = text(values, "symbol")
        market = resolve_symbol(symbol) if symbol is not None else None
        rows = list_orders(user=_user(request), market=market, open_only=True)
        rows = rows.select_related("market__base", "market__quote").order_by("pk")
        return Response([compat.order_object(o) for o in rows])

    def delete(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        targets = list(
            list_orders(user=_user(request), market=market, open_only=True)
            .select_related("market__base", "market__quote")
            .order_by("pk")
        )
        if not targets or cancel_all(user=_user(request), market=market) == 0:
            raise BinanceError(-2011, UNKNOWN_ORDER)
        return Response([_cancelled(o) for o in compat.wait_for_all_terminal(targets)])


def _page(values: dict[str, str], *, from_name: str) -> compat.Page:
    start_ms = integer(values, "startTime", maximum=MAX_TIME_MS)
    end_ms = integer(values, "endTime", maximum=MAX_TIME_MS)
    compat.check_window(start_ms, end_ms)
    limit = integer(values, "limit", minimum=1, maximum=compat.MAX_LIMIT)
    return compat.Page(
        from_id=integer(values, from_name),
        start=_moment(start_ms),
        end=_moment(end_ms),
        limit=limit or compat.DEFAULT_LIMIT,
    )


def _moment(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class AllOrdersApi(SignedView):
    """GET /api/v3/allOrders?symbol= (orderId, startTime, endTime, limit <= 1000)."""

    weight = 20

    def get(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        page = _page(values, from_name="orderId")
        rows = list_orders(user=_user(request), market=market).select_related(
            "market__base", "market__quote"
        )
        return Response([compat.order_object(o) for o in compat.page_orders(rows, page)])


class MyTradesApi(SignedView):
    """GET /api/v3/myTrades?symbol= (orderId, startTime, endTime, fromId, limit <= 1000)."""

    weight = 20

    def get(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        order_id = integer(values, "orderId")
        page = _page(values, from_name="fromId")
        if order_id is not None and page.from_id is not None:
            raise BinanceError(-1106, "Parameter 'fromId' sent when not required.")
        trades = list_user_trades(user=_user(request), market=market).select_related(
            "market__base", "market__quote"
        )
        picked = compat.page_trades(trades, page, order_id=order_id)
        return Response(
            [row for t in picked for row in compat.trade_objects(t, user=_user(request))]
        )


class CancelReplaceApi(SignedView):
    """POST /api/v3/order/cancelReplace: cancel one order, then place a new one.

    The new order's parameters are checked first (a bad one changes nothing). The cancel is
    the engine's: the new order is placed once the old one is no longer open, or when the
    wait runs out (its hold is released only when the engine has cancelled it, so a new order
    needing those funds may then fail with -2010 insufficient balance). A cancel that finds
    the order already filled is a cancel failure, as on Binance.
    """

    weight = 1

    def order_count(self, request: Request) -> int:
        return 1

    def post(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(text(values, "symbol"))
        mode = text(values, "cancelReplaceMode", required=True)
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise illegal("cancelReplaceMode", "STOP_ON_FAILURE, ALLOW_FAILURE")
        parsed = compat.new_order(values, market=market)
        old = _own_order(_user(request), values, market, prefix="cancel")
        cancel_response, cancelled = self._cancel(_user(request), old)
        if not cancelled and mode == "STOP_ON_FAILURE":
            return _replace_failed(-2022, cancel_response, None, "NOT_ATTEMPTED")
        try:
            order = place_order(user=_user(request), market=market, spec=parsed.spec)
            new_response = _render_placed(order, parsed.response_type).data
            placed = True
        except (DomainError, BinanceError) as exc:
            error = binance_error(exc) if isinstance(exc, DomainError) else exc
            new_response, placed = {"code": error.code, "msg": error.msg}, False
        if cancelled and placed:
            return Response(
                {
                    "cancelResult": "SUCCESS",
                    "newOrderResult": "SUCCESS",
                    "cancelResponse": cancel_response,
                    "newOrderResponse": new_response,
                }
            )
        code = -2021 if cancelled or placed else -2022
        return _replace_failed(
            code, cancel_response, new_response, "SUCCESS" if placed else "FAILURE"
        )

    def _cancel(self, user: User, order: Order) -> tuple[dict[str, Any], bool]:
        try:
            cancel_order(user=user, order_id=order.pk)
        except DomainError as exc:
            error = binance_error(exc)
            return {"code": error.code, "msg": error.msg}, False
        after = compat.wait_for_outcome(order, terminal=True)
        if after.status == OrderStatus.FILLED:
            return {"code": -2011, "msg": UNKNOWN_ORDER}, False
        return _cancelled(after), True


def _replace_failed(
    code: int, cancel_response: dict[str, Any], new_response: Any, new_result: str
) -> Response:
    cancel_ok = "code" not in cancel_response
    message = (
        "Order cancel-replace partially failed."
        if code == -2021
        else ("Order cancel-replace failed.")
    )
    return Response(
        {
            "code": code,
            "msg": message,
            "data": {
                "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
                "newOrderResult": new_result,
                "cancelResponse": cancel_response,
                "newOrderResponse": new_response,
            },
        },
        status=400,
    )


urls: list[URLPattern] = [
    path("account", AccountApi.as_view(), name="compat-account"),
    path("account/commission", CommissionApi.as_view(), name="compat-commission"),
    path("order", OrderApi.as_view(), name="compat-order"),
    path("order/test", TestOrderApi.as_view(), name="compat-order-test"),
    path("order/cancelReplace", CancelReplaceApi.as_view(), name="compat-cancel-replace"),
    path("openOrders", OpenOrdersApi.as_view(), name="compat-open-orders"),
    path("allOrders", AllOrdersApi.as_view(), name="compat-all-orders"),
    path("myTrades", MyTradesApi.as_view(), name="compat-my-trades"),
]
