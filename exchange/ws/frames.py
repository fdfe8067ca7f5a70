"""Binance's websocket payloads, built from our selectors' objects and settlement's messages.

All numbers are strings with the market's places, all times milliseconds since the epoch,
as on Binance. The REST views (exchange.api.binance) format the same objects the same
way, so a stream and a snapshot agree to the character.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from exchange.api.binance.base import fmt, ms
from exchange.api.binance.orders import order_object
from markets.marketdata.candles import Kline
from markets.marketdata.ticker import Ticker
from trading.models import Order, OrderStatus, Trade

Levels = list[list[str]]


def s(value: Decimal) -> str:
    """A Decimal as a plain string (never an exponent: 5E-8 is written 0.00000005)."""
    return format(value, "f")


def depth_update(
    *, symbol: str, event_ms: int, first: int, last: int, bids: Levels, asks: Levels
) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "s": symbol,
        "U": first,
        "u": last,
        "b": bids,
        "a": asks,
    }


def partial_depth(*, last: int, bids: Levels, asks: Levels) -> dict[str, Any]:
    return {"lastUpdateId": last, "bids": bids, "asks": asks}


def book_ticker(
    *, symbol: str, last: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None
) -> dict[str, Any]:
    bid_price, bid_qty = bid or ("0", "0")
    ask_price, ask_qty = ask or ("0", "0")
    return {"u": last, "s": symbol, "b": bid_price, "B": bid_qty, "a": ask_price, "A": ask_qty}


def trade(*, symbol: str, event_ms: int, trade: dict[str, Any]) -> dict[str, Any]:
    """`trade` from one of settlement's trade entries (seq, price, quantity, taker_side)."""
    return {
        "e": "trade",
        "E": event_ms,
        "s": symbol,
        "t": trade["seq"],
        "p": trade["price"],
        "q": trade["quantity"],
        "T": trade["time"],
        "m": trade["taker_side"] == "sell",  # the buyer rested: the taker sold
        "M": True,
    }


def agg_trade(*, symbol: str, event_ms: int, trade: dict[str, Any]) -> dict[str, Any]:
    """One aggregate per trade, as GET /api/v3/aggTrades answers (a = f = l = the trade id)."""
    return {
        "e": "aggTrade",
        "E": event_ms,
        "s": symbol,
        "a": trade["seq"],
        "p": trade["price"],
        "q": trade["quantity"],
        "f": trade["seq"],
        "l": trade["seq"],
        "T": trade["time"],
        "m": trade["taker_side"] == "sell",
        "M": True,
    }


def kline(*, symbol: str, event_ms: int, interval: str, k: Kline, closed: bool) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol,
        "k": {
            "t": ms(k.open_time),
            "T": ms(k.close_time),
            "s": symbol,
            "i": interval,
            "f": -1 if k.first_trade_id is None else k.first_trade_id,
            "L": -1 if k.last_trade_id is None else k.last_trade_id,
            "o": s(k.open),
            "c": s(k.close),
            "h": s(k.high),
            "l": s(k.low),
            "v": s(k.volume),
            "n": k.trade_count,
            "x": closed,
            "q": s(k.quote_volume),
            "V": s(k.taker_buy_volume),
            "Q": s(k.taker_buy_quote_volume),
            "B": "0",
        },
    }


def _side(
    price: Decimal | None, quantity: Decimal | None, price_places: int, qty_places: int
) -> tuple[str, str]:
    return fmt(price, price_places), fmt(quantity, qty_places)


def ticker(
    *, symbol: str, event_ms: int, t: Ticker, price_places: int, qty_places: int
) -> dict[str, Any]:
    bid_price, bid_qty = _side(t.bid_price, t.bid_quantity, price_places, qty_places)
    ask_price, ask_qty = _side(t.ask_price, t.ask_quantity, price_places, qty_places)
    return {
        "e": "24hrTicker",
        "E": event_ms,
        "s": symbol,
        "p": s(t.change),
        "P": s(t.change_percent),
        "w": s(t.weighted_average),
        "x": s(t.prev_close),
        "c": s(t.last),
        "Q": "0",
        "b": bid_price,
        "B": bid_qty,
        "a": ask_price,
        "A": ask_qty,
        "o": s(t.open),
        "h": s(t.high),
        "l": s(t.low),
        "v": s(t.volume),
        "q": s(t.quote_volume),
        "O": ms(t.open_time),
        "C": ms(t.close_time),
        "F": t.first_trade_id,
        "L": t.last_trade_id,
        "n": t.trade_count,
    }


def mini_ticker(*, symbol: str, event_ms: int, t: Ticker) -> dict[str, Any]:
    return {
        "e": "24hrMiniTicker",
        "E": event_ms,
        "s": symbol,
        "c": s(t.last),
        "o": s(t.open),
        "h": s(t.high),
        "l": s(t.low),
        "v": s(t.volume),
        "q": s(t.quote_volume),
    }


# ----------------------------------------------------------------- user data

_EXECUTION = {
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}


def execution_reports(
    *, order: Order, fills: Iterable[Trade], prev_seq: int, event_ms: int
) -> list[dict[str, Any]]:
    """The executionReports one settled batch makes of one order, in order: NEW when it was
    accepted in the batch, one TRADE per fill, then CANCELED / EXPIRED / REJECTED when it
    ended without filling completely; REPLACED for a change with none of those (a reduce).

    `fills` are the order's trades of the batch (seq in (prev_seq, the batch's seq]).
    """
    base = order_object(order)
    market = order.market
    qty_places, price_places = market.base.decimals, market.quote.decimals
    fills = sorted(fills, key=lambda trade: trade.seq)
    cumulative = order.filled_quantity - sum((t.quantity for t in fills), Decimal(0))
    cumulative_quote = order.filled_quote - sum((t.quote_quantity for t in fills), Decimal(0))

    def report(kind: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "e": "executionReport",
            "E": event_ms,
            "s": base["symbol"],
            "c": order.client_order_id,
            "S": base["side"],
            "o": base["type"],
            "f": base["timeInForce"],
            "q": base["origQty"],
            "p": base["price"],
            "P": base["stopPrice"],
            "F": "0",
            "g": -1,
            "C": "",
            "x": kind,
            "X": status,
            "r": order.reject_reason.upper() or "NONE",
            "i": order.pk,
            "l": "0",
            "z": fmt(cumulative, qty_places),
            "L": "0",
            "n": "0",
            "N": None,
            "T": event_ms,
            "t": -1,
            "I": order.pk,
            "w": order.is_open,
            "m": False,
            "M": False,
            "O": base["time"],
            "Z": fmt(cumulative_quote, price_places),
            "Y": "0",
            "Q": base["origQuoteOrderQty"],
            "W": base["workingTime"],
            "V": base["selfTradePreventionMode"],
        } | extra

    out = []
    accepted_now = order.accepted_seq is not None and order.accepted_seq > prev_seq
    if accepted_now or (order.accepted_seq is None and order.status == OrderStatus.NEW):
        out.append(report("NEW", "NEW", z=fmt(cumulative, qty_places), w=True))
    for n, t in enumerate(fills, start=1):
        cumulative += t.quantity
        cumulative_quote += t.quote_quantity
        last = n == len(fills)
        status = "FILLED" if last and order.status == OrderStatus.FILLED else "PARTIALLY_FILLED"
        is_maker = t.maker_order_id == order.pk
        out.append(
            report(
                "TRADE",
                status,
                l=fmt(t.quantity, qty_places),
                z=fmt(cumulative, qty_places),
                L=fmt(t.price, price_places),
                n=fmt(t.maker_fee if is_maker else t.taker_fee, price_places),
                N=market.quote.code,
                T=ms(t.created_at),
                t=t.seq,
                w=order.is_open or not last,
                m=is_maker,
                Z=fmt(cumulative_quote, price_places),
                Y=fmt(t.quote_quantity, price_places),
            )
        )
    ended = _EXECUTION.get(OrderStatus(order.status))
    if ended is not None:
        out.append(report(ended, ended, w=False))
    elif not out:
        out.append(report("REPLACED" if order.is_open else "TRADE", base["status"]))
    return out


def account_position(*, event_ms: int, balances: Iterable[dict[str, str]]) -> dict[str, Any]:
    """outboundAccountPosition from settlement's balance.update entries."""
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [
            {"a": b["asset"], "f": s(Decimal(b["available"])), "l": s(Decimal(b["locked"]))}
            for b in balances
        ],
    }


def balance_update(*, event_ms: int, asset: str, delta: str, time_ms: int) -> dict[str, Any]:
    return {"e": "balanceUpdate", "E": event_ms, "a": asset, "d": delta, "T": time_ms}


def listen_key_expired(*, event_ms: int, listen_key: str) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": event_ms, "listenKey": listen_key}
