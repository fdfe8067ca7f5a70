"""The webhook events of one settled batch: its changed orders and its trades, as the id
columns accounts.webhooks.record takes (one statement, in settle_batch's transaction, after
the batch's rows are written: the payloads are read from them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from accounts.webhooks.record import SettlementEvents, record_settlement_events
from trading.services.settlement_orders import SettledOrder, TradeRows


def record_batch_webhooks(
    *,
    market_id: int,
    symbol: str,
    quote_id: int,
    batch_seq: int,
    orders: Mapping[int, SettledOrder],
    changed: Sequence[SettledOrder],
    trades: TradeRows,
) -> None:
    """Record `order.update` for each changed order and `trade` for both sides of each
    trade; nothing (no statement) when the batch changed neither. ``batch_seq`` is the
    batch's last seq: with the order id it names the order's update event."""
    trade_orders = [
        order_id for pair in zip(trades.buy, trades.sell, strict=True) for order_id in pair
    ]
    events = SettlementEvents(
        order_id=[order.id for order in changed],
        order_user_id=[order.user_id for order in changed],
        trade_seq=[seq for seq in trades.seq for _side in (0, 1)],  # buyer's row, seller's
        trade_order_id=trade_orders,
        trade_user_id=[orders[order_id].user_id for order_id in trade_orders],
    )
    record_settlement_events(
        market_id=market_id,
        symbol=symbol,
        fee_asset_id=quote_id,
        batch_seq=batch_seq,
        events=events,
    )
