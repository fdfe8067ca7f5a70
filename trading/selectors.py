"""Reads of orders and trades, scoped to their owner unless said otherwise."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import User
from markets.models import Market
from trading.errors import OrderNotFound
from trading.models import OPEN_STATUSES, Order, Trade


def get_order(*, user: User, order_id: int) -> Order:
    """One of the user's orders; OrderNotFound for unknown ids and other users' orders alike."""
    order = Order.objects.select_related("market").filter(user=user, pk=order_id).first()
    if order is None:
        raise OrderNotFound("No such order.", field="order_id")
    return order


def find_order_by_client_id(*, user: User, client_order_id: str) -> Order | None:
    """The user's order with that client_order_id, or None."""
    return (
        Order.objects.select_related("market")
        .filter(user=user, client_order_id=client_order_id)
        .first()
    )


def list_orders(
    *, user: User, market: Market | None = None, open_only: bool = False
) -> QuerySet[Order]:
    """The user's orders, newest first."""
    orders = Order.objects.select_related("market").filter(user=user).order_by("-pk")
    if market is not None:
        orders = orders.filter(market=market)
    if open_only:
        orders = orders.filter(status__in=OPEN_STATUSES)
    return orders


def list_open_orders_of_market(*, market: Market) -> QuerySet[Order]:
    """Every open order of a market in acceptance order (recovery, auditors)."""
    return Order.objects.filter(market=market, status__in=OPEN_STATUSES).order_by("pk")


def list_user_trades(*, user: User, market: Market | None = None) -> QuerySet[Trade]:
    """Trades in which the user bought or sold, newest first."""
    trades = (
        Trade.objects.select_related("market", "buy_order", "sell_order")
        .filter(Q(buy_order__user=user) | Q(sell_order__user=user))
        .order_by("-pk")
    )
    if market is not None:
        trades = trades.filter(market=market)
    return trades


def list_market_trades(*, market: Market) -> QuerySet[Trade]:
    """A market's public trade tape, newest first."""
    return Trade.objects.filter(market=market).order_by("-seq")
