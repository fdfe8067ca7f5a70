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
between fills and the trade happens at exactly the fill's price. `rest` leaves an order on
the book (its `accepted` and the level's new total), for tests of the best bid and ask;
keep resting orders away from the fills' prices, or a fill's events would not be the
engine's. `prepare` builds a batch
without settling it (for redelivered and overlapping batches); the feed numbers events on
from its own counter, so prepared batches follow each other whether settled or not.

Use in a plain `django_db` test (no `transaction=True` needed): inside the test's
transaction the outbox never reaches Redis, and nothing here reads it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from accounts.models import Asset, User
from exchange import clock
from markets.marketdata.candles import Kline
from markets.models import Market
from tests.factories import MarketFactory, UserFactory, fund
from trading.engine.commands import OrderType, Side, TimeInForce
from trading.engine.events import Accepted, LevelChanged
from trading.engine.events import Trade as TradeEvent
from trading.models import SettlementCursor, Trade
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
    levels: dict[tuple[str, int], int] = field(default_factory=dict)  # resting lots per level

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

    def rest(
        self, side: str, price: Decimal | str, quantity: Decimal | str, *, at: datetime
    ) -> Any:
        """Settle one resting limit order (accepted, and its level's new total): a book level."""
        price, quantity = Decimal(price), Decimal(quantity)
        price_ticks = int(price / self.market.tick_size)
        qty_lots = int(quantity / self.market.lot_size)
        order = self._place(Side(side), price, quantity)
        total = self.levels.get((side, price_ticks), 0) + qty_lots
        self.levels[(side, price_ticks)] = total
        raw = [
            self._accepted(order, Side(side), price_ticks, qty_lots),
            (LevelChanged, self._seq(), Side(side), price_ticks, total),
        ]
        events = [
            [str(v) if isinstance(v, Enum) else v for v in e] for e in events_from_raw(raw, "")
        ]
        self.deliver([(TOKEN, events)], at=at)
        return order

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


# --- an oracle for klines, sharing no code with markets.marketdata -------------------------
# It buckets the settled Trade rows by their own timestamps with integer epoch arithmetic
# (weeks from Monday 1970-01-05, months by the calendar), takes open and close by trade id
# and fills a tradeless bucket with the previous kline's close: Binance's klines, as
# markets.marketdata.candles documents them.

STRIDES = {  # seconds
    **{f"{n}m": 60 * n for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": 3600 * n for n in (1, 2, 4, 6, 8, 12)},
    "1d": 86400,
    "3d": 3 * 86400,
    "1w": 7 * 86400,
}
INTERVAL_NAMES = [*STRIDES, "1M"]
MONDAY = 4 * 86400  # 1970-01-05 is four days after the (Thursday) epoch
_PRICE, _QTY, _QUOTE = MARKET_RULES["tick_size"], MARKET_RULES["lot_size"], Decimal("0.000001")


def oracle_bucket(name: str, moment: datetime) -> datetime:
    if name == "1M":
        return datetime(moment.year, moment.month, 1, tzinfo=UTC)
    seconds = int(moment.timestamp())
    offset = MONDAY if name == "1w" else 0
    return datetime.fromtimestamp(seconds - (seconds - offset) % STRIDES[name], tz=UTC)


def oracle_step(name: str, opened: datetime, n: int = 1) -> datetime:
    if name == "1M":
        months = opened.year * 12 + opened.month - 1 + n
        return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    return opened + timedelta(seconds=n * STRIDES[name])


def klines_from_trades(market: Market, name: str) -> dict[datetime, Kline]:
    """The market's non-empty klines of `name`, from its Trade rows (a TradeFeed market)."""
    assert (market.tick_size, market.lot_size, market.quote.decimals) == (_PRICE, _QTY, 6)
    groups: dict[datetime, list[tuple[Any, ...]]] = {}
    for row in Trade.objects.filter(market=market).values_list(
        "seq", "price", "quantity", "quote_quantity", "taker_side", "created_at"
    ):
        groups.setdefault(oracle_bucket(name, row[5]), []).append(row)
    out = {}
    for opened, rows in groups.items():
        rows.sort()
        buys = [r for r in rows if r[4] == "buy"]
        out[opened] = Kline(
            open_time=opened,
            close_time=oracle_step(name, opened) - timedelta(milliseconds=1),
            open=rows[0][1].quantize(_PRICE),
            high=max(r[1] for r in rows).quantize(_PRICE),
            low=min(r[1] for r in rows).quantize(_PRICE),
            close=rows[-1][1].quantize(_PRICE),
            volume=sum((r[2] for r in rows), Decimal(0)).quantize(_QTY),
            quote_volume=sum((r[3] for r in rows), Decimal(0)).quantize(_QUOTE),
            trade_count=len(rows),
            taker_buy_volume=sum((r[2] for r in buys), Decimal(0)).quantize(_QTY),
            taker_buy_quote_volume=sum((r[3] for r in buys), Decimal(0)).quantize(_QUOTE),
            first_trade_id=rows[0][0],
            last_trade_id=rows[-1][0],
        )
    return out


def expected_klines(
    market: Market,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    now: datetime,
) -> list[Kline]:
    """Binance's answer: opens in [start, end] (end capped at now), filled from the first trade."""
    klines = klines_from_trades(market, name)
    if not klines:
        return []
    first = min(klines)
    hi = oracle_bucket(name, min(end, now) if end else now)
    if start is not None:
        lo = oracle_bucket(name, start)
        lo = lo if lo == start else oracle_step(name, lo)
        lo = max(lo, first)
        opens = []
        while lo <= hi and len(opens) < limit:
            opens.append(lo)
            lo = oracle_step(name, lo)
    else:
        opens = [oracle_step(name, hi, -n) for n in range(limit - 1, -1, -1)]
    out, prev = [], None
    earlier = sorted(k for k in klines if opens and k < opens[0])
    if earlier:
        prev = klines[earlier[-1]].close
    for opened in opens:
        if opened in klines:
            out.append(klines[opened])
            prev = klines[opened].close
        elif prev is not None:
            close_time = oracle_step(name, opened) - timedelta(milliseconds=1)
            zero_b, zero_q = Decimal(0).quantize(_QTY), Decimal(0).quantize(_QUOTE)
            flat = (prev, prev, prev, prev, zero_b, zero_q, 0, zero_b, zero_q, None, None)
            out.append(Kline(opened, close_time, *flat))
    return out


__all__ = [
    "INTERVAL_NAMES",
    "MARKET_RULES",
    "TOKEN",
    "Entry",
    "Fill",
    "TradeFeed",
    "expected_klines",
    "klines_from_trades",
    "oracle_bucket",
    "oracle_step",
]
