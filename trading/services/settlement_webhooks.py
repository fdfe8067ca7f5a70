"""The webhook events of one settled batch: its changed orders and its trades, as the plain
columns accounts.webhooks.record takes (one statement, in settle_batch's transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from accounts.webhooks.record import OrderColumns, TradeColumns, record_settlement_events
from trading.services.settlement_orders import SettledOrder, TradeRows


def record_batch_webhooks(
    *,
    market_id: int,
    symbol: str,
    quote_id: int,
    batch_seq: int,
    now: datetime,
    orders: Mapping[int, SettledOrder],
    changed: Iterable[SettledOrder],
    trades: TradeRows,
) -> None:
    """Record `order.update` for each changed order and `trade` for both sides of each
    trade; nothing (no statement) when the batch changed neither. ``batch_seq`` is the
    batch's last seq: with the order id it names the order's update event."""
    order_columns = OrderColumns()
    for order in changed:
        order_columns.id.append(order.id)
        order_columns.user_id.append(order.user_id)
        order_columns.side.append(order.side)
        order_columns.status.append(order.status)
        order_columns.price_e18.append(order.price_e18)
        order_columns.quantity_e18.append(order.quantity_e18)
        order_columns.filled_quantity_e18.append(order.filled_quantity_e18)
        order_columns.filled_quote_e18.append(order.filled_quote_e18)
        order_columns.fee_paid_e18.append(order.fee_paid_e18)
    trade_columns = TradeColumns()
    for i, seq in enumerate(trades.seq):
        maker_id = trades.maker[i]
        for order_id, side in ((trades.buy[i], "buy"), (trades.sell[i], "sell")):
            is_maker = order_id == maker_id
            trade_columns.seq.append(seq)
            trade_columns.order_id.append(order_id)
            trade_columns.user_id.append(orders[order_id].user_id)
            trade_columns.side.append(side)
            trade_columns.is_maker.append(is_maker)
            trade_columns.price_e18.append(trades.price_e18[i])
            trade_columns.quantity_e18.append(trades.quantity_e18[i])
            trade_columns.quote_e18.append(trades.quote_e18[i])
            trade_columns.fee_e18.append(
                trades.maker_fee_e18[i] if is_maker else trades.taker_fee_e18[i]
            )
    record_settlement_events(
        market_id=market_id,
        symbol=symbol,
        fee_asset_id=quote_id,
        batch_seq=batch_seq,
        now=now,
        orders=order_columns,
        trades=trade_columns,
    )
