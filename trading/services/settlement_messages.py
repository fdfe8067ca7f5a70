"""The channels messages of one settled batch (trading.services.settlement builds the batch,
exchange.publish sends these after its transaction commits)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from exchange.publish import Message, depth_group, trades_group, user_group
from trading.services.settlement_orders import SettledOrder, TradeRows

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def batch_messages(
    *,
    symbol: str,
    tick: Decimal,
    lot: Decimal,
    tick_e18: int,
    lot_e18: int,
    depth: dict[tuple[str, int], int],
    trades: TradeRows,
    orders: Iterable[SettledOrder],
    prev_seq: int,
    seq: int,
    balances: list[tuple[int, str, Decimal, Decimal]],
    time: datetime,
) -> list[Message]:
    """The depth diff, the trades and each touched user's order and balance updates of one
    settled batch (``depth``: (side, price ticks) -> total lots; ``tick``/``lot`` trimmed).

    Every message carries ``time``, the batch's time in ms since the epoch (the trades'
    created_at); user messages carry ``prev_seq`` too, so a reader can find the batch's own
    trades of an order (seq in (prev_seq, seq]).
    """
    time_ms = (time - _EPOCH) // _MS
    bids = [[str(tick * p), str(lot * t)] for (s, p), t in depth.items() if s == "buy"]
    asks = [[str(tick * p), str(lot * t)] for (s, p), t in depth.items() if s == "sell"]
    out: list[Message] = [
        (
            depth_group(symbol),
            {
                "type": "depth.diff",
                "symbol": symbol,
                "prev_seq": prev_seq,
                "seq": seq,
                "time": time_ms,
                "bids": bids,
                "asks": asks,
            },
        )
    ]
    if trades.seq:
        out.append(
            (
                trades_group(symbol),
                {
                    "type": "trade",
                    "symbol": symbol,
                    "time": time_ms,
                    "trades": [
                        {
                            "seq": s,
                            "price": str(tick * (price // tick_e18)),
                            "quantity": str(lot * (quantity // lot_e18)),
                            "taker_side": side,
                        }
                        for s, price, quantity, side in zip(
                            trades.seq,
                            trades.price_e18,
                            trades.quantity_e18,
                            trades.side,
                            strict=True,
                        )
                    ],
                },
            )
        )
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for order in orders:
        if order.changed:
            by_user[order.user_id].append(order.as_message(symbol))
    for user_id, updates in by_user.items():
        out.append(
            (
                user_group(user_id),
                {
                    "type": "order.update",
                    "prev_seq": prev_seq,
                    "seq": seq,
                    "time": time_ms,
                    "orders": updates,
                },
            )
        )
    by_balance: dict[int, list[dict[str, str]]] = defaultdict(list)
    for user_id, code, available, locked in balances:
        by_balance[user_id].append(
            {"asset": code, "available": str(available), "locked": str(locked)}
        )
    out.extend(
        (
            user_group(user_id),
            {"type": "balance.update", "seq": seq, "time": time_ms, "balances": items},
        )
        for user_id, items in by_balance.items()
    )
    return out
