"""Trades at chosen prices, sides and times, settled through the real `settle_batch`.

Market-data tests need a trading history they choose (this price, that side, at 10:07 on a
Sunday) written by the code that writes it in production. `TradeFeed` does that without the
matching loop: it places each trade's two orders through `place_order` (real holds), builds
the events the engine would emit for them (the maker's and the taker's `accepted`, then one
`trade` that fills both, in the stream's wire format) and hands them to `settle_batch` under
`exchange.clock.shifted(at)`, so the trades, candles and last price carry that time.

    feed = TradeFeed.create(assets, "MD-USDT")
    feed.settle([Fill("100.5", "0.3", "buy")], at=datetime(2026, 3, 1, 10, 7, tzinfo=UTC))

Each fill is its own maker/taker pair that fully fills both orders, so the book is empty
between fills and the trade happens at exactly the fill's price. `prepare` builds a batch
without settling it (for redelivered and overlapping batches); the feed numbers events on
from its own counter, so prepared batches follow each other whether settled or not.

Use in a plain `django_db` test (no `transaction=True` needed): inside the test's
transaction the outbox never reaches Redis, and nothing here reads it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from accounts.models import Asset, User
from exchange import clock
from markets.models import Market
from tests.factories import MarketFactory, UserFactory, fund
from trading.engine.commands import OrderType, Side, TimeInForce
from trading.engine.events import Accepted
from trading.engine.events import Trade as TradeEvent
from trading.models import SettlementCursor
from trading.services.orders import place_order
from trading.services.settlement import SettleResult, settle_batch
from trading.streams import events_from_raw
from trading.validation import OrderSpec

Entry = tuple[int, list[list[Any]]]  # (lease token, events), as settle_batch takes them
TOKEN = 1
_ids = itertools.count(1)
# Rules that let any price and lot through: no band, no minimum value, no fees' rounding
# surprises in the amounts a test compares (fees still apply; they do not touch candles).
MARKET_RULES: dict[str, Any] = {
    "tick_size": Decimal("0.01"),
    "lot_size": Decimal("0.0001"),
    "min_quantity": Decimal("0.0001"),
    "max_quantity": Decimal("1000000"),
    "min_notional": Decimal("0"),
    "price_band_pct": Decimal("0"),
}


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade to settle: price (a multiple of the tick), quantity (of the lot), taker side."""

    price: Decimal | str
    quantity: Decimal | str
    taker_side: str  # "buy" or "sell"


@dataclass
class TradeFeed:
    """Settles chosen trades of one market; see the module docstring."""

    market: Market
    buyer: User
    seller: User
    next_seq: int
    batches: list[Entry] = field(default_factory=list)

    @classmethod
    def create(cls, assets: dict[str, Asset], symbol: str | None = None, **rules: Any) -> TradeFeed:
        """A new market (BTC priced in USDT unless `rules` say otherwise) and two funded
        traders. `symbol` defaults to a fresh one, so feeds never share a market."""
        n = next(_ids)
        market = MarketFactory.create(
            symbol=symbol or f"MD{n}-USDT",
            base=rules.pop("base", assets["BTC"]),
            quote=rules.pop("quote", assets["USDT"]),
            **{**MARKET_RULES, **rules},
        )
        return cls.for_market(market)

    @classmethod
    def for_market(cls, market: Market) -> TradeFeed:
        """A feed for an existing market: two new traders, numbering after its cursor."""
        n = next(_ids)
        buyer = UserFactory.create(email=f"md-buyer-{n}@example.com")
        seller = UserFactory.create(email=f"md-seller-{n}@example.com")
        fund(buyer, market.quote, "1000000000000")
        fund(seller, market.base, "1000000000")
        cursor = SettlementCursor.objects.filter(market=market).first()
        return cls(market, buyer, seller, next_seq=(cursor.last_seq if cursor else 0) + 1)

    def prepare(self, fills: Iterable[Fill]) -> Entry:
        """Place each fill's two orders and build the batch's events (not settled yet)."""
        events: list[list[Any]] = []
        tick, lot = self.market.tick_size, self.market.lot_size
        for fill in fills:
            price, quantity = Decimal(fill.price), Decimal(fill.quantity)
            price_ticks, qty_lots = int(price / tick), int(quantity / lot)
            assert price_ticks * tick == price, f"{fill}: price off the tick"
            assert qty_lots * lot == quantity, f"{fill}: quantity off the lot"
            taker_side = Side(fill.taker_side)
            maker_side = Side.SELL if taker_side is Side.BUY else Side.BUY
            maker = self._place(maker_side, price, quantity)
            taker = self._place(taker_side, price, quantity)
            raw = [
                self._accepted(maker, maker_side, price_ticks, qty_lots),
                self._accepted(taker, taker_side, price_ticks, qty_lots),
                (
                    TradeEvent,
                    self._seq(),
                    maker.pk,
                    taker.pk,
                    maker.user_id,
                    taker.user_id,
                    price_ticks,
                    qty_lots,
                    taker_side,
                    True,
                    True,
                ),
            ]
            events.extend(events_from_raw(raw, "place_order"))
        # The wire format carries plain strings, not the engine's enums.
        entry = (TOKEN, [[str(v) if isinstance(v, Enum) else v for v in e] for e in events])
        self.batches.append(entry)
        return entry

    def settle(self, fills: Iterable[Fill], *, at: datetime) -> Entry:
        """Prepare one batch of `fills` and settle it at `at`; returns the entry settled."""
        entry = self.prepare(fills)
        self.deliver([entry], at=at)
        return entry

    def deliver(self, entries: Sequence[Entry], *, at: datetime) -> SettleResult:
        """Hand `entries` (prepared, possibly already settled) to settle_batch at `at`."""
        with clock.shifted(at):
            return settle_batch(market_id=self.market.pk, entries=list(entries))

    def _seq(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    def _place(self, side: Side, price: Decimal, quantity: Decimal) -> Any:
        user = self.buyer if side is Side.BUY else self.seller
        spec = OrderSpec(side=str(side), price=price, quantity=quantity)
        return place_order(user=user, market=self.market, spec=spec)

    def _accepted(self, order: Any, side: Side, price_ticks: int, qty_lots: int) -> tuple:
        return (
            Accepted,
            self._seq(),
            order.pk,
            order.user_id,
            side,
            OrderType.LIMIT,
            TimeInForce.GTC,
            price_ticks,
            qty_lots,
            0,
            0,
        )


__all__ = ["MARKET_RULES", "TOKEN", "Entry", "Fill", "TradeFeed"]
