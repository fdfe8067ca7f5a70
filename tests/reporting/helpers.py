"""Trade rows written directly (real orders, no settlement) and an independent raw-SUM oracle.

The rollup's unit tests need years of trades at chosen instants; settling them for real is
far too slow, so `TradeRows` inserts `trading.Trade` rows over real `Order` rows (one buy and
one sell order per user and market, canceled so they hold nothing). The oracle sums those
rows in Python, bucketing each by `created_at.astimezone(zone).date()`: it shares no code
with reporting's SQL or its day bounds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from accounts.models import User
from markets.models import Market
from reporting.selectors import MarketVolume, UserVolume
from trading.models import Order, OrderSide, OrderStatus, OrderType, Trade

D = Decimal


@dataclass
class TradeRows:
    """Inserts trades between chosen users of chosen markets, numbering seq per market."""

    orders: dict[tuple[int, int, str], Order] = field(default_factory=dict)
    seqs: dict[int, int] = field(default_factory=dict)

    def order(self, market: Market, user: User, side: str) -> Order:
        key = (market.pk, user.pk, side)
        if key not in self.orders:
            self.orders[key] = Order.objects.create(
                user=user,
                market=market,
                client_order_id=uuid.uuid4().hex,
                side=side,
                order_type=OrderType.LIMIT,
                price=D("1"),
                quantity=D("1"),
                hold_asset=market.quote,
                hold_amount=D("0"),
                hold_remaining=D("0"),
                status=OrderStatus.CANCELED,
                **_fee_rates(market),
            )
        return self.orders[key]

    def add(
        self,
        market: Market,
        *,
        buyer: User,
        seller: User,
        at: datetime,
        quantity: str | Decimal = "1",
        price: str | Decimal = "10",
        maker: str = "buy",
        maker_fee: str | Decimal = "0.01",
        taker_fee: str | Decimal = "0.02",
    ) -> Trade:
        """One trade at `at`; `maker` names the side whose order rested."""
        buy = self.order(market, buyer, OrderSide.BUY)
        sell = self.order(market, seller, OrderSide.SELL)
        seq = self.seqs.get(market.pk, 0) + 1
        self.seqs[market.pk] = seq
        quantity, price = D(quantity), D(price)
        return Trade.objects.create(
            market=market,
            seq=seq,
            buy_order=buy,
            sell_order=sell,
            maker_order=buy if maker == "buy" else sell,
            taker_order=sell if maker == "buy" else buy,
            price=price,
            quantity=quantity,
            quote_quantity=price * quantity,
            taker_side="sell" if maker == "buy" else "buy",
            maker_fee=D(maker_fee),
            taker_fee=D(taker_fee),
            created_at=at,
        )


def _fee_rates(market: Market) -> dict[str, Decimal]:
    """The order's fee rates where the Order model carries them (issue 11's fee tiers add
    them while this is written); the market's own rates."""
    names = {f.name for f in Order._meta.concrete_fields}
    if "maker_fee_rate" not in names:
        return {}
    return {"maker_fee_rate": market.maker_fee, "taker_fee_rate": market.taker_fee}


def _in_range(trade: Trade, start: date, end: date, zone: ZoneInfo) -> bool:
    return start <= trade.created_at.astimezone(zone).date() <= end


def raw_market(
    trades: Iterable[Trade], market: Market, start: date, end: date, zone: ZoneInfo
) -> MarketVolume:
    """The market's totals over local days start..end, summed trade by trade."""
    chosen = [t for t in trades if t.market_id == market.pk and _in_range(t, start, end, zone)]
    return MarketVolume(
        base_volume=sum((t.quantity for t in chosen), D("0")),
        quote_volume=sum((t.quote_quantity for t in chosen), D("0")),
        trade_count=len(chosen),
        maker_fees=sum((t.maker_fee for t in chosen), D("0")),
        taker_fees=sum((t.taker_fee for t in chosen), D("0")),
    )


def raw_user(
    trades: Iterable[Trade], market: Market, user: User, start: date, end: date, zone: ZoneInfo
) -> UserVolume:
    """The user's sides of the market's trades over local days start..end."""
    base = quote = fees = D("0")
    count = 0
    for t in trades:
        if t.market_id != market.pk or not _in_range(t, start, end, zone):
            continue
        for order_id in (t.buy_order_id, t.sell_order_id):
            if Order.objects.get(pk=order_id).user_id != user.pk:
                continue
            base += t.quantity
            quote += t.quote_quantity
            fees += t.maker_fee if t.maker_order_id == order_id else t.taker_fee
            count += 1
    return UserVolume(base, quote, count, fees)
