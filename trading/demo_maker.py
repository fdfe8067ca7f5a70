"""A demo market maker: keeps the demo markets' books filled and trading while the exchange runs.

Per market it walks a mid price in whole ticks (seeded `random.Random`, no floats for money),
starting from the market's last trade price (else the middle of the book), and keeps a
ladder of LEVELS bids and LEVELS asks around it: each round it cancels its quotes that are
no longer on the ladder (`cancel_order`) and places the ladder's missing levels
(`place_order`). Now and then it takes liquidity with a small market or crossing IOC limit
order, so trades, a ticker and candles appear. Everything goes through the services every
client uses; the running matching and settlement loops execute it.

Its one account (MAKER_EMAIL, no usable password) is funded once through `credit_deposit`
with fixed references: no money is made anywhere else. Orders are sized from what is
available, each taking at most MAX_SHARE of it, so when trading drains a balance the quotes
get smaller and then stop on that side; it never deposits more.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from accounts.models import Asset, User
from accounts.selectors import get_balance
from accounts.services.deposits import credit_deposit
from exchange.errors import DomainError
from markets.models import Market
from markets.selectors import get_current_market
from trading.models import OPEN_STATUSES, Order, OrderSide, OrderType, TimeInForce
from trading.selectors import list_orders
from trading.services.orders import cancel_all, cancel_order, place_order
from trading.validation import OrderSpec, band_limits

D = Decimal
MAKER_EMAIL = "maker@exchange.localhost"
# Credited once (fixed external references); enough for hours of quoting seed_demo's markets.
FUNDS = {"BTC": "20", "ETH": "400", "USDT": "2000000", "IRT": "200000000000"}
LEVELS = 4  # quotes a side
HALF_SPREAD_BPS = 5  # best bid and ask around the mid, in basis points of the mid
LEVEL_GAP_BPS = 4  # between two levels of one side
WALK_BPS = 3  # the largest step of the mid per round
REVERSION = 60  # each round pulls the mid back by 1/REVERSION of its distance to the anchor
SIZE_RANGE = 20  # a quote is 1 to SIZE_RANGE times the market's smallest valid size
TAKE_RANGE = 3  # a taker order is 1 to TAKE_RANGE times the smallest size
MAX_SHARE = D("0.02")  # of the available balance, per order
# Seconds between two taker orders on one market (timing only, never an amount).
TAKE_EVERY = (3.0, 9.0)
_BPS = 10_000
_PRECISION = 80


@dataclass
class MakerReport:
    """What the maker did (printed by the command, read by tests)."""

    rounds: int = 0
    placed: int = 0
    cancelled: int = 0
    taken: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # levels not quoted, by reason
    refused: Counter[str] = field(default_factory=Counter)  # DomainError codes

    def summary(self) -> str:
        extra = ""
        if self.skipped:
            extra += f", skipped {dict(self.skipped)}"
        if self.refused:
            extra += f", refused {dict(self.refused)}"
        return (
            f"{self.rounds} rounds, {self.placed} orders placed, {self.cancelled} cancelled,"
            f" {self.taken} taker orders{extra}"
        )


def fund_maker(*, assets: Sequence[Asset]) -> User:
    """The maker's account, created if missing and credited FUNDS once per asset.

    Idempotent: each deposit has the reference "demo-maker:<email>:<code>", so a second call
    (every restart) returns the stored deposits and moves nothing. Assets outside FUNDS get
    nothing; the maker then simply cannot quote the side that needs them.
    """
    user = User.objects.filter(email=MAKER_EMAIL).first()
    if user is None:
        user = User.objects.create_user(email=MAKER_EMAIL)  # no password: nobody signs in
    for asset in assets:
        if asset.code in FUNDS:
            credit_deposit(
                user=user,
                asset=asset,
                amount=D(FUNDS[asset.code]),
                external_ref=f"demo-maker:{MAKER_EMAIL}:{asset.code}",
            )
    return user


def min_lots(market: Market, price: Decimal) -> int:
    """The fewest lots a valid order at `price` may have (min quantity and min notional)."""
    with localcontext(prec=_PRECISION):
        by_quantity = (market.min_quantity / market.lot_size).to_integral_value(ROUND_CEILING)
        by_notional = (market.min_notional / (price * market.lot_size)).to_integral_value(
            ROUND_CEILING
        )
    return max(1, int(by_quantity), int(by_notional))


def walk_step(*, mid_ticks: int, anchor_ticks: int, rng: random.Random) -> int:
    """The next mid: a bounded random step, pulled back towards the anchor; at least 1."""
    step = max(1, mid_ticks * WALK_BPS // _BPS)
    pull = (mid_ticks - anchor_ticks) // REVERSION
    return max(1, mid_ticks + rng.randint(-step, step) - pull)


def spacing(scale_ticks: int) -> tuple[int, int]:
    """(half spread, gap between levels) in ticks for a price of `scale_ticks`; each >= 1."""
    return (
        max(1, scale_ticks * HALF_SPREAD_BPS // _BPS),
        max(1, scale_ticks * LEVEL_GAP_BPS // _BPS),
    )


def ladder(*, mid_ticks: int, scale_ticks: int) -> list[tuple[str, int]]:
    """The quotes around a mid as (side, price in ticks), bids then asks, best first.

    Spaced by `spacing(scale_ticks)` (the anchor's, not the mid's) and centred on the mid
    rounded down to a multiple of the gap: a small move of the mid leaves the prices where
    they were, so most quotes survive a round instead of being cancelled and placed again.
    """
    half, gap = spacing(scale_ticks)
    centre = mid_ticks // gap * gap
    quotes = [(OrderSide.BUY.value, centre - half - level * gap) for level in range(LEVELS)]
    quotes += [(OrderSide.SELL.value, centre + half + level * gap) for level in range(LEVELS)]
    return [(side, ticks) for side, ticks in quotes if ticks >= 1]


def _band_ticks(market: Market) -> tuple[int, int] | None:
    band = band_limits(market)
    if band is None:
        return None
    with localcontext(prec=_PRECISION):
        low = int((band[0] / market.tick_size).to_integral_value(ROUND_CEILING))
        high = int((band[1] / market.tick_size).to_integral_value(ROUND_FLOOR))
    return max(1, low), high


def _book_mid_ticks(market: Market) -> int | None:
    """The middle of the best open bid and ask of anyone, in ticks; None on an empty side."""
    open_limits = Order.objects.filter(market=market, status__in=OPEN_STATUSES, price__isnull=False)
    prices = open_limits.values_list("price", flat=True)
    bid = prices.filter(side=OrderSide.BUY).order_by("-price").first()
    ask = prices.filter(side=OrderSide.SELL).order_by("price").first()
    if bid is None or ask is None:
        return None
    with localcontext(prec=_PRECISION):
        return int(((bid + ask) / 2 / market.tick_size).to_integral_value(ROUND_FLOOR))


class MarketMaker:
    """One market's walk, ladder and taker schedule."""

    def __init__(self, *, market: Market, user: User, seed: int, report: MakerReport) -> None:
        self.market, self.user, self.report = market, user, report
        self.rng = random.Random(f"{seed}:{market.symbol}")  # noqa: S311 - a demo, no secret
        anchor = (
            int(market.last_price / market.tick_size)
            if market.last_price
            else _book_mid_ticks(market)
        )
        self.anchor_ticks = anchor
        self.mid_ticks = anchor
        self.next_take: float | None = None
        self.cancelling: set[int] = set()  # cancel sent, settlement not yet seen

    def _price(self, ticks: int) -> Decimal:
        return ticks * self.market.tick_size

    def _cap_lots(self, *, side: str, price: Decimal, available: Decimal) -> int:
        """The most lots one order may use: MAX_SHARE of `available`, fees included."""
        market = self.market
        with localcontext(prec=_PRECISION):
            budget = available * MAX_SHARE
            if side == OrderSide.BUY:
                fee = max(market.maker_fee, market.taker_fee)
                per_lot = price * market.lot_size * (1 + fee)
            else:
                per_lot = market.lot_size
            return int((budget / per_lot).to_integral_value(ROUND_FLOOR))

    def _quantity(
        self,
        *,
        side: str,
        price: Decimal,
        available: Decimal,
        spread: int,
        hold_price: Decimal | None = None,
    ) -> Decimal | None:
        """A random valid quantity, or None if the balance is short.

        `price` is what validation values the order at (min notional): the limit price, or
        the last price for a market order; `hold_price` (default `price`) what a buy's hold
        is computed at, which for a market buy is the band's top.
        """
        market = self.market
        low = min_lots(market, price)
        with localcontext(prec=_PRECISION):
            most = int((market.max_quantity / market.lot_size).to_integral_value(ROUND_FLOOR))
        cap = self._cap_lots(side=side, price=hold_price or price, available=available)
        high = min(low * spread, most, cap)
        if high < low:
            return None
        return self.rng.randint(low, high) * market.lot_size

    def _available(self) -> dict[str, Decimal]:
        return {
            OrderSide.SELL.value: get_balance(user=self.user, asset=self.market.base).available,
            OrderSide.BUY.value: get_balance(user=self.user, asset=self.market.quote).available,
        }

    def _place(self, spec: OrderSpec) -> bool:
        try:
            place_order(user=self.user, market=self.market, spec=spec)
        except DomainError as exc:  # a refused order (funds, band, status) is not fatal
            self.report.refused[exc.code] += 1
            return False
        self.report.placed += 1
        return True

    def _target(self, *, mid_ticks: int, anchor_ticks: int) -> list[tuple[str, int]]:
        """Advance the walk and return the ladder, kept inside the market's price band."""
        mid = walk_step(mid_ticks=mid_ticks, anchor_ticks=anchor_ticks, rng=self.rng)
        band = _band_ticks(self.market)
        if band is not None:
            low, high = band
            # Trades move the band with the last price: keep the whole ladder inside it.
            half, gap = spacing(anchor_ticks)
            outer = half + LEVELS * gap  # LEVELS, not LEVELS - 1: the centre rounds down
            if low + outer <= high - outer:
                mid = min(max(mid, low + outer), high - outer)
            else:
                mid = (low + high) // 2
        self.mid_ticks = mid
        quotes = ladder(mid_ticks=mid, scale_ticks=anchor_ticks)
        if band is not None:
            quotes = [(side, ticks) for side, ticks in quotes if band[0] <= ticks <= band[1]]
        return quotes

    def quote(self) -> None:
        """One re-quote: cancel quotes off the new ladder, place its missing levels."""
        self.market = get_current_market(market_id=self.market.pk)
        if self.mid_ticks is None or self.anchor_ticks is None:
            self.mid_ticks = self.anchor_ticks = _book_mid_ticks(self.market)
        if self.mid_ticks is None or self.anchor_ticks is None:
            self.report.skipped["no_price"] += 1
            return
        wanted = set(self._target(mid_ticks=self.mid_ticks, anchor_ticks=self.anchor_ticks))
        kept: set[tuple[str, int]] = set()
        mid = self.mid_ticks
        # Only resting quotes: a taker order (IOC) still open here is about to expire.
        open_orders = list_orders(user=self.user, market=self.market, open_only=True).filter(
            time_in_force=TimeInForce.GTC
        )
        still_open = set()
        for order in open_orders:
            still_open.add(order.pk)
            if order.pk in self.cancelling:
                continue
            key = (order.side, int(order.price / self.market.tick_size)) if order.price else None
            if key in wanted and key not in kept:
                kept.add(key)
                continue
            try:
                cancel_order(user=self.user, order_id=order.pk)
            except DomainError as exc:  # filled or cancelled meanwhile
                self.report.refused[exc.code] += 1
                continue
            self.cancelling.add(order.pk)
            self.report.cancelled += 1
        self.cancelling &= still_open
        available = self._available()
        for side, ticks in sorted(wanted - kept, key=lambda q: (q[0], abs(q[1] - mid))):
            price = self._price(ticks)
            quantity = self._quantity(
                side=side, price=price, available=available[side], spread=SIZE_RANGE
            )
            if quantity is None:
                self.report.skipped["low_balance"] += 1
                continue
            if self._place(OrderSpec(side=side, price=price, quantity=quantity)):
                available[side] -= price * quantity if side == OrderSide.BUY else quantity

    def take(self) -> bool:
        """Cross the ladder's best opposite quote with a small market or IOC limit order."""
        if self.mid_ticks is None or self.anchor_ticks is None:
            return False
        side = self.rng.choice((OrderSide.BUY.value, OrderSide.SELL.value))
        # A buy crosses the best ask, a sell the best bid (the first of that side).
        quotes = ladder(mid_ticks=self.mid_ticks, scale_ticks=self.anchor_ticks)
        opposite = [ticks for s, ticks in quotes if s != side]
        if not opposite:
            return False
        price = self._price(opposite[0])
        band, last = band_limits(self.market), self.market.last_price
        as_market = self.rng.random() < 0.5 and band is not None and last is not None
        value_price, hold_price = price, price
        if as_market and band is not None and last is not None:
            # Validation values a market order at the last price; a market buy holds at
            # the band's top.
            value_price = last
            hold_price = band[1] if side == OrderSide.BUY else last
        quantity = self._quantity(
            side=side,
            price=min(value_price, price),  # enough lots at either price
            available=self._available()[side],
            spread=TAKE_RANGE,
            hold_price=hold_price,
        )
        if quantity is None:
            self.report.skipped["low_balance"] += 1
            return False
        if as_market:
            spec = OrderSpec(side=side, order_type=OrderType.MARKET, quantity=quantity)
        else:
            spec = OrderSpec(
                side=side, time_in_force=TimeInForce.IOC, price=price, quantity=quantity
            )
        if not self._place(spec):
            return False
        self.report.taken += 1
        return True

    def round(self, *, now: float) -> None:
        """Re-quote, then take liquidity when this market's taker time has come."""
        self.quote()
        if self.next_take is None:
            self.next_take = now + self.rng.uniform(*TAKE_EVERY)
        elif now >= self.next_take:
            self.take()
            self.next_take = now + self.rng.uniform(*TAKE_EVERY)


def withdraw_quotes(*, user: User) -> int:
    """Ask the engine to cancel every open order of the maker; return how many."""
    return cancel_all(user=user)


def run_demo_maker(
    *,
    markets: Sequence[Market],
    seed: int,
    interval: float,
    rounds: int | None,
    stop: threading.Event,
) -> MakerReport:
    """Quote `markets` every ~`interval` s (jittered ±25%) until `stop` or `rounds` rounds.

    Funds the maker first (idempotent). When stopped by `stop` (a signal), its open orders
    are cancelled before this returns; after its `rounds` its quotes stay on the book.
    """
    report = MakerReport()
    assets = list({a.pk: a for m in markets for a in (m.base, m.quote)}.values())
    user = fund_maker(assets=assets)
    makers = [MarketMaker(market=m, user=user, seed=seed, report=report) for m in markets]
    pace = random.Random(seed)  # noqa: S311 - timing jitter, no secret
    while not stop.is_set():
        for maker in makers:
            maker.round(now=time.monotonic())
        report.rounds += 1
        if rounds is not None and report.rounds >= rounds:
            break
        stop.wait(interval * pace.uniform(0.75, 1.25))
    if stop.is_set():
        report.cancelled += withdraw_quotes(user=user)
    return report
