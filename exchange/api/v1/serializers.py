"""Output shapes shared by v1 views: the error body, orders, trades, per-item results.

Amounts are strings with the market's places (prices and quote amounts in the quote asset's,
quantities in the base asset's); times are milliseconds since the epoch.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from exchange.api.v1.base import fmt, ms, rate
from trading.models import Order, Trade


class ErrorSerializer(serializers.Serializer):
    """Every v1 error: a stable machine code, a message for people, the input at fault."""

    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class OrderSerializer(serializers.Serializer):
    """An order as stored now (placing and cancelling are asynchronous: see `status`)."""

    id = serializers.IntegerField(source="pk")
    client_order_id = serializers.CharField()
    market = serializers.CharField(source="market.symbol")
    side = serializers.CharField()
    type = serializers.CharField(source="order_type")
    time_in_force = serializers.CharField()
    stp_mode = serializers.CharField()
    status = serializers.CharField()
    reject_reason = serializers.CharField()
    price = serializers.SerializerMethodField()
    stop_price = serializers.SerializerMethodField()
    quantity = serializers.SerializerMethodField()
    quote_amount = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()
    remaining_quantity = serializers.SerializerMethodField()
    filled_quote = serializers.SerializerMethodField()
    fee_paid = serializers.SerializerMethodField()
    fee_asset = serializers.CharField(source="market.quote.code")
    maker_fee_rate = serializers.SerializerMethodField()
    taker_fee_rate = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_price(self, order: Order) -> str | None:
        return fmt(order.price, order.market.quote.decimals)

    def get_stop_price(self, order: Order) -> str | None:
        return fmt(order.stop_price, order.market.quote.decimals)

    def get_quantity(self, order: Order) -> str | None:
        return fmt(order.quantity, order.market.base.decimals)

    def get_quote_amount(self, order: Order) -> str | None:
        return fmt(order.quote_amount, order.market.quote.decimals)

    def get_filled_quantity(self, order: Order) -> str | None:
        return fmt(order.filled_quantity, order.market.base.decimals)

    def get_remaining_quantity(self, order: Order) -> str | None:
        return fmt(order.remaining_quantity, order.market.base.decimals)

    def get_filled_quote(self, order: Order) -> str | None:
        return fmt(order.filled_quote, order.market.quote.decimals)

    def get_fee_paid(self, order: Order) -> str | None:
        return fmt(order.fee_paid, order.market.quote.decimals)

    def get_maker_fee_rate(self, order: Order) -> str:
        return rate(order.maker_fee_rate)

    def get_taker_fee_rate(self, order: Order) -> str:
        return rate(order.taker_fee_rate)

    def get_created_at(self, order: Order) -> int | None:
        return ms(order.created_at)

    def get_updated_at(self, order: Order) -> int | None:
        return ms(order.updated_at)


class TradeSerializer(serializers.Serializer):
    """One of the user's fills, from the user's side (`context["user_id"]`)."""

    id = serializers.IntegerField(source="pk")
    market = serializers.CharField(source="market.symbol")
    order_id = serializers.SerializerMethodField()
    side = serializers.SerializerMethodField()
    is_maker = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()
    quantity = serializers.SerializerMethodField()
    quote_quantity = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField()
    fee_asset = serializers.CharField(source="market.quote.code")
    time = serializers.SerializerMethodField()

    def _own_order(self, trade: Trade) -> Order:
        # Maker and taker are the buy and sell orders (a CHECK says so), which the trade
        # selector loads. A self-trade is both; it is shown as the taker's side.
        buy, sell = trade.buy_order, trade.sell_order
        user_id = self.context["user_id"]
        if buy.user_id == user_id and sell.user_id == user_id:
            return buy if buy.pk == trade.taker_order_id else sell
        return buy if buy.user_id == user_id else sell

    def get_order_id(self, trade: Trade) -> int:
        return int(self._own_order(trade).pk)

    def get_side(self, trade: Trade) -> str:
        return str(self._own_order(trade).side)

    def get_is_maker(self, trade: Trade) -> bool:
        return bool(self._own_order(trade).pk == trade.maker_order_id)

    def get_price(self, trade: Trade) -> str | None:
        return fmt(trade.price, trade.market.quote.decimals)

    def get_quantity(self, trade: Trade) -> str | None:
        return fmt(trade.quantity, trade.market.base.decimals)

    def get_quote_quantity(self, trade: Trade) -> str | None:
        return fmt(trade.quote_quantity, trade.market.quote.decimals)

    def get_fee(self, trade: Trade) -> str | None:
        fee = trade.maker_fee if self.get_is_maker(trade) else trade.taker_fee
        return fmt(fee, trade.market.quote.decimals)

    def get_time(self, trade: Trade) -> int | None:
        return ms(trade.created_at)


def item_result(index: int, *, data: Any = None, error: Any = None) -> dict[str, Any]:
    """One entry of a batch answer: `ok` with the order, or the item's error body.

    Any: a serializer's output or DomainError.as_dict().
    """
    if error is not None:
        return {"index": index, "ok": False, "error": error}
    return {"index": index, "ok": True, "order": data}
