"""Binance's order vocabulary over ours: parameters in, order and trade objects out, the wait.

In: `order_spec` turns POST /order's parameters into our OrderSpec (trading.validation), so
every amount goes through the services' own parser (no exponent, NaN, Infinity, sign,
non-ASCII digit, underscore or space; at most 18 places; then the market's tick, lot and
places). Binance's types map onto the engine's:

    LIMIT -> limit          MARKET -> market          LIMIT_MAKER -> limit_maker
    STOP_LOSS -> stop_market                          STOP_LOSS_LIMIT -> stop_limit
    TAKE_PROFIT, TAKE_PROFIT_LIMIT -> refused (-1013)

The engine triggers a buy stop when the last price rises to its stop price and a sell stop
when it falls to it: exactly Binance's STOP_LOSS rule for both sides. A take-profit needs the
opposite direction (a sell when the price rises to the stop, a buy when it falls), which the
engine cannot express: placed as a stop it would trigger at once. So both take-profit types
are refused rather than mapped onto something that executes differently. A stop whose
trigger is already crossed by the last price is refused as Binance does ("Stop price would
trigger immediately."), since the engine would fire it at acceptance.

Out: `order_object`, `order_result` (ACK / RESULT / FULL) and `trade_object` render rows
with the market's assets' places. `wait_for_outcome` is the bounded wait RESULT and FULL
responses, cancels and cancelReplace use (settings.API_ORDER_RESULT_WAIT_SECONDS).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import User
from exchange.api.binance.base import binance_symbol, fmt, ms, text
from exchange.api.binance.errors import BinanceError, illegal, mandatory
from markets.models import Market
from trading.models import OPEN_STATUSES, Order, OrderSide, OrderStatus, OrderType, Trade
from trading.validation import OrderSpec, parse_order_spec

DEFAULT_RESULT_WAIT_SECONDS = 2.0  # until settings.API_ORDER_RESULT_WAIT_SECONDS exists
_POLL_FIRST = 0.005  # the matching loop's usual turnaround is a few ms
_POLL_MAX = 0.05  # then at most 20 reads a second per waiting request

TYPES_IN = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "LIMIT_MAKER": OrderType.LIMIT_MAKER,
    "STOP_LOSS": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
}
TYPES_OUT: dict[str, str] = {str(ours): theirs for theirs, ours in TYPES_IN.items()}
TAKE_PROFIT_TYPES = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_NEEDS_TIME_IN_FORCE = frozenset({"LIMIT", "STOP_LOSS_LIMIT"})
_SIDES = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
_TIFS = frozenset({"GTC", "IOC", "FOK"})
STP_MODES = frozenset({"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"})
RESPONSE_TYPES = frozenset({"ACK", "RESULT", "FULL"})
_STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
MAX_WINDOW_MS = 24 * 3600 * 1000  # allOrders / myTrades: at most 24 h between the two times


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A parsed POST /order: what to place and how to answer."""

    spec: OrderSpec
    response_type: str


def result_wait_seconds() -> float:
    return float(getattr(settings, "API_ORDER_RESULT_WAIT_SECONDS", DEFAULT_RESULT_WAIT_SECONDS))


def new_order(values: dict[str, str], *, market: Market) -> NewOrder:
    """POST /order's (and cancelReplace's) order parameters as a spec. Raises BinanceError
    or the DomainErrors of parse_order_spec (rendered by the compat handler)."""
    side_text = text(values, "side", required=True)
    type_text = text(values, "type", required=True)
    if side_text not in _SIDES:
        raise BinanceError(-1117, "Invalid side.")
    if type_text in TAKE_PROFIT_TYPES:
        raise BinanceError(-1013, "Take profit orders are not supported for this symbol.")
    if type_text not in TYPES_IN:
        raise BinanceError(-1116, "Invalid orderType.")
    order_type = TYPES_IN[type_text]
    tif = text(values, "timeInForce")
    if tif is None and type_text in _NEEDS_TIME_IN_FORCE:
        raise mandatory("timeInForce")
    if tif is not None and tif not in _TIFS:
        raise BinanceError(-1115, "Invalid timeInForce.")
    if tif is not None and type_text == "LIMIT_MAKER" and tif != "GTC":
        raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
    if text(values, "icebergQty") is not None:
        raise BinanceError(-1106, "Parameter 'icebergQty' sent when not required.")
    stp = text(values, "selfTradePreventionMode")
    if stp is not None and stp not in STP_MODES:
        raise illegal("selfTradePreventionMode", ", ".join(sorted(STP_MODES)))
    response_type = text(values, "newOrderRespType")
    if response_type is None:
        response_type = "FULL" if type_text in ("LIMIT", "MARKET") else "ACK"
    elif response_type not in RESPONSE_TYPES:
        raise illegal("newOrderRespType", "ACK, RESULT, FULL")
    spec = parse_order_spec(
        {
            "side": _SIDES[side_text],
            "order_type": order_type,
            "time_in_force": tif.lower() if tif else None,
            "price": text(values, "price"),
            "quantity": text(values, "quantity"),
            "quote_amount": text(values, "quoteOrderQty"),
            "stop_price": text(values, "stopPrice"),
            "client_order_id": text(values, "newClientOrderId"),
            "stp_mode": stp.lower() if stp else None,
        }
    )
    _check_stop_not_crossed(spec, market=market)
    return NewOrder(spec=spec, response_type=response_type)


def _check_stop_not_crossed(spec: OrderSpec, *, market: Market) -> None:
    # Binance refuses a stop that would trigger at once; the engine would fire it at accept.
    if spec.order_type not in _STOPS or spec.stop_price is None or market.last_price is None:
        return
    last = market.last_price
    crossed = last >= spec.stop_price if spec.side == OrderSide.BUY else last <= spec.stop_price
    if crossed:
        raise BinanceError(-2010, "Stop price would trigger immediately.")


# ---------------------------------------------------------------- waiting for the engine


def _has_outcome(order: Order) -> bool:
    return order.accepted_seq is not None or order.status != OrderStatus.NEW


def wait_for_outcome(order: Order, *, terminal: bool = False) -> Order:
    """The order re-read until the matching loop has answered for it (accepted, rejected,
    filled...), or with `terminal` until it is no longer open; at most the setting's wait.
    When the wait runs out the order is returned as it is (NEW, or still open)."""
    deadline = time.monotonic() + result_wait_seconds()
    pause = _POLL_FIRST
    current = order
    while True:
        done = not current.is_open if terminal else _has_outcome(current)
        if done or time.monotonic() >= deadline:
            return current
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
        current = Order.objects.select_related("market__base", "market__quote").get(pk=order.pk)


def wait_for_all_terminal(orders: list[Order]) -> list[Order]:
    """`orders` re-read until none is open, or the setting's wait runs out."""
    deadline = time.monotonic() + result_wait_seconds()
    pause = _POLL_FIRST
    ids = [o.pk for o in orders]
    current = orders
    while any(o.is_open for o in current) and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
        current = list(
            Order.objects.select_related("market__base", "market__quote")
            .filter(pk__in=ids)
            .order_by("pk")
        )
    return current


# ---------------------------------------------------------------- rendering


def _places(market: Market) -> tuple[int, int]:
    return market.base.decimals, market.quote.decimals


def order_object(order: Order) -> dict[str, Any]:
    """GET /order's object (also each item of openOrders and allOrders)."""
    base, quote = _places(order.market)
    created = ms(order.created_at)
    is_stop = order.order_type in _STOPS
    working = not is_stop or order.triggered_seq is not None
    return {
        "symbol": binance_symbol(order.market),
        "orderId": order.pk,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price, quote),
        "origQty": fmt(order.quantity, base),
        "executedQty": fmt(order.filled_quantity, base),
        "cummulativeQuoteQty": fmt(order.filled_quote, quote),
        "status": order.status.upper(),
        "timeInForce": order.time_in_force.upper(),
        "type": TYPES_OUT.get(order.order_type, order.order_type.upper()),
        "side": order.side.upper(),
        "stopPrice": fmt(order.stop_price, quote),
        "icebergQty": fmt(None, base),
        "time": created,
        "updateTime": ms(order.updated_at),
        "isWorking": working and order.is_open,
        "workingTime": created if working else -1,
        "origQuoteOrderQty": fmt(order.quote_amount, quote),
        "selfTradePreventionMode": order.stp_mode.upper(),
    }


def order_result(order: Order, *, response_type: str, fills: Iterable[Trade] = ()) -> dict:
    """POST /order's answer in the asked shape (ACK, RESULT or FULL)."""
    ack = {
        "symbol": binance_symbol(order.market),
        "orderId": order.pk,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": ms(order.created_at),
    }
    if response_type == "ACK":
        return ack
    full = order_object(order)
    for name in ("time", "updateTime", "isWorking", "icebergQty"):
        full.pop(name)
    if order.order_type not in _STOPS:
        full.pop("stopPrice")
    result = {**ack, **full}
    if response_type == "FULL":
        base, quote = _places(order.market)
        result["fills"] = [
            {
                "price": fmt(trade.price, quote),
                "qty": fmt(trade.quantity, base),
                "commission": fmt(_fee_of(trade, order.pk), quote),
                "commissionAsset": order.market.quote.code,
                "tradeId": trade.seq,
            }
            for trade in fills
        ]
    return result


def _fee_of(trade: Trade, order_id: int) -> Decimal:
    return trade.maker_fee if trade.maker_order_id == order_id else trade.taker_fee


def trade_objects(trade: Trade, *, user: User) -> list[dict[str, Any]]:
    """myTrades rows for one trade: one per side of it the user was on (two on a self-trade)."""
    market = trade.market
    base, quote = _places(market)
    rows = []
    for order in (trade.buy_order, trade.sell_order):
        if order.user_id != user.pk:
            continue
        is_maker = trade.maker_order_id == order.pk
        rows.append(
            {
                "symbol": binance_symbol(market),
                "id": trade.seq,
                "orderId": order.pk,
                "orderListId": -1,
                "price": fmt(trade.price, quote),
                "qty": fmt(trade.quantity, base),
                "quoteQty": fmt(trade.quote_quantity, quote),
                "commission": fmt(trade.maker_fee if is_maker else trade.taker_fee, quote),
                "commissionAsset": market.quote.code,
                "time": ms(trade.created_at),
                "isBuyer": order.pk == trade.buy_order_id,
                "isMaker": is_maker,
                "isBestMatch": True,
            }
        )
    return rows


def fills_of(order: Order) -> list[Trade]:
    """The order's trades, oldest first."""
    return list(
        Trade.objects.filter(Q(buy_order_id=order.pk) | Q(sell_order_id=order.pk)).order_by("seq")
    )


# ---------------------------------------------------------------- Binance paging


@dataclass(frozen=True, slots=True)
class Page:
    """allOrders / myTrades paging: an id to start from, a time range, a limit."""

    from_id: int | None
    start: datetime | None
    end: datetime | None
    limit: int


def check_window(start_ms: int | None, end_ms: int | None) -> None:
    if start_ms is not None and end_ms is not None:
        if end_ms < start_ms:
            raise BinanceError(-1127, "startTime must be before endTime.")
        if end_ms - start_ms > MAX_WINDOW_MS:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")


def page_orders(orders: QuerySet[Order], page: Page) -> list[Order]:
    """Binance's allOrders rule: from orderId up; else from startTime up (to endTime); else
    the latest up to endTime, or simply the latest; always returned oldest first."""
    if page.from_id is not None:
        return list(orders.filter(pk__gte=page.from_id).order_by("pk")[: page.limit])
    if page.start is not None:
        rows = orders.filter(created_at__gte=page.start)
        if page.end is not None:
            rows = rows.filter(created_at__lte=page.end)
        return list(rows.order_by("pk")[: page.limit])
    if page.end is not None:
        orders = orders.filter(created_at__lte=page.end)
    return list(reversed(orders.order_by("-pk")[: page.limit]))


def page_trades(trades: QuerySet[Trade], page: Page, *, order_id: int | None) -> list[Trade]:
    """Binance's myTrades rule (fromId = trade id, i.e. our seq), oldest first."""
    if order_id is not None:
        trades = trades.filter(Q(buy_order_id=order_id) | Q(sell_order_id=order_id))
    if page.from_id is not None:
        return list(trades.filter(seq__gte=page.from_id).order_by("seq")[: page.limit])
    if page.start is not None:
        rows = trades.filter(created_at__gte=page.start)
        if page.end is not None:
            rows = rows.filter(created_at__lte=page.end)
        return list(rows.order_by("seq")[: page.limit])
    if page.end is not None:
        trades = trades.filter(created_at__lte=page.end)
    return list(reversed(trades.order_by("-seq")[: page.limit]))


def open_only(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.filter(status__in=OPEN_STATUSES)
