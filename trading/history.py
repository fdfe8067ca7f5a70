"""A trading history for the demo markets, made of real orders settled at past times.

A fresh install has markets but no trades: no candles, no ticker, an empty chart. This
writes days of history the way the exchange would have: two funded accounts (a market
maker quoting both sides, a taker crossing them) place orders through `place_order`, the
real matching and settlement loops (in threads here, as `simulate` runs them, or the
running workers) match and settle them, and the process clock (`exchange.clock`) is
shifted to each time slot while it happens, so orders, holds, trades and candles carry
the slot's time. Nothing is written around the pipeline: check_ledger and check_marketdata
hold afterwards as after any trading.

Per market and slot the mid price follows a seeded random walk around the market's price,
pulled back towards it and bent to end where it started, in whole ticks (no floats): the
maker cancels its previous quotes and quotes two levels a side around the mid, then the
taker takes one or two of them with IOC limits. The last slot's quotes stay on the book.

Idempotent: a market that already has a trade gets no history (its trades' times must
stay in the order of their sequence, so a history can only come before the first trade);
a second run therefore adds nothing, and the accounts' deposits are credited once per
fixed reference.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection

from accounts.models import Asset, User
from accounts.services.deposits import credit_deposit
from exchange import clock
from exchange.errors import DomainError
from markets.models import Market
from trading.matching import run_matching_loop
from trading.models import Trade
from trading.services.orders import cancel_all, place_order
from trading.settlement_loop import is_caught_up, run_settlement_loop
from trading.validation import OrderSpec

D = Decimal
MAKER_EMAIL = "history-maker@exchange.localhost"
TAKER_EMAIL = "history-taker@exchange.localhost"
# Enough of each demo asset for both accounts to trade a month of 5-minute slots without
# running dry (the maker's inventory drifts with the taker's random sides).
FUNDS = {"BTC": "500", "ETH": "10000", "USDT": "200000000", "IRT": "50000000000000"}
WALK_BPS = 40  # the largest step of the mid per slot, in basis points of the price
REVERSION = 40  # each slot pulls the mid back by 1/REVERSION of its distance to the anchor
HALF_SPREAD_BPS = 5  # maker's best bid and ask around the mid
LEVEL_GAP_BPS = 8  # the maker's second level behind its first
SETTLE_POLL = 0.005  # seconds between checks that a slot is settled


@dataclass(frozen=True, slots=True)
class Profile:
    """A demo market's order sizes (base asset): the smallest and largest quote."""

    low: Decimal
    high: Decimal


# seed_demo's markets (markets/management/commands/seed_demo.py): sizes above each
# market's minimum quantity and notional at its demo price.
PROFILES = {
    "BTC-USDT": Profile(low=D("0.002"), high=D("0.05")),
    "ETH-USDT": Profile(low=D("0.05"), high=D("1")),
    "USDT-IRT": Profile(low=D("20"), high=D("500")),
}


@dataclass
class MarketHistory:
    """What was written for one market."""

    symbol: str
    skipped: bool = False  # it already had trades
    placed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    trades: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class HistoryReport:
    markets: list[MarketHistory]
    slots: int
    elapsed: float

    @property
    def trades(self) -> int:
        return sum(market.trades for market in self.markets)


def price_walk(*, anchor_ticks: int, slots: int, rng: random.Random) -> list[int]:
    """`slots` mids in ticks after `anchor_ticks`: bounded steps, pulled back towards the
    anchor and bent so the last mid is the anchor again (so the market's price after the
    history is the price it had before). Integer ticks only; never below one tick."""
    step = max(1, anchor_ticks * WALK_BPS // 10_000)
    walk = [anchor_ticks]
    for _ in range(slots):
        here = walk[-1]
        walk.append(here + rng.randint(-step, step) - (here - anchor_ticks) // REVERSION)
    drift = walk[-1] - anchor_ticks
    return [max(1, walk[i] - drift * i // slots) for i in range(1, slots + 1)]


def slot_times(
    *, end: datetime, days: int, step_minutes: int, rng: random.Random
) -> list[datetime]:
    """The slots' moments, oldest first, one per `step_minutes` over `days` before `end`:
    each at a random minute and second inside its step, so candles are not all aligned."""
    step = timedelta(minutes=step_minutes)
    count = days * 24 * 60 // step_minutes
    start = end.replace(second=0, microsecond=0) - count * step
    spare_minutes = step_minutes - 1  # the slot's work must not spill into the next step
    return [
        start
        + i * step
        + timedelta(minutes=rng.randint(0, spare_minutes), seconds=rng.randint(0, 45))
        for i in range(count)
    ]


def _funded_user(email: str, assets: Sequence[Asset]) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email)  # no password: nobody signs in as it
    for asset in assets:
        credit_deposit(
            user=user,
            asset=asset,
            amount=D(FUNDS[asset.code]),
            external_ref=f"seed-history:{email}:{asset.code}",
        )
    return user


class _Quoter:
    """One market's slots: the maker's quotes and the taker's orders around each mid."""

    def __init__(self, market: Market, *, seed: int, slots: int, maker: User, taker: User):
        self.market, self.maker, self.taker = market, maker, taker
        self.rng = random.Random(f"{seed}:{market.symbol}")  # noqa: S311 - a demo, no secret
        self.profile = PROFILES[market.symbol]
        anchor = market.last_price or D(1)
        self.mids = price_walk(
            anchor_ticks=int(anchor / market.tick_size), slots=slots, rng=self.rng
        )
        self.result = MarketHistory(symbol=market.symbol)

    def _lots(self, low: Decimal, high: Decimal) -> Decimal:
        lot = self.market.lot_size
        return self.rng.randint(int(low / lot), int(high / lot)) * lot

    def _place(self, user: User, spec: OrderSpec) -> bool:
        try:
            place_order(user=user, market=self.market, spec=spec)
        except DomainError as exc:  # a refused order (funds, band) is part of trading
            self.result.refused[exc.code] += 1
            return False
        self.result.placed += 1
        return True

    def run_slot(self, index: int) -> None:
        mid = self.mids[index]
        half = max(1, mid * HALF_SPREAD_BPS // 10_000)
        gap = max(1, mid * LEVEL_GAP_BPS // 10_000)
        tick, profile = self.market.tick_size, self.profile
        try:  # before the new quotes, so the maker never trades with its own old quote
            cancel_all(user=self.maker, market=self.market)
        except DomainError as exc:
            self.result.refused[exc.code] += 1
        quotes = []
        for side, best in (("buy", mid - half), ("sell", mid + half)):
            for level in (best, best - gap if side == "buy" else best + gap):
                quantity = self._lots(profile.low, profile.high)
                spec = OrderSpec(side=side, price=max(1, level) * tick, quantity=quantity)
                if self._place(self.maker, spec):
                    quotes.append(spec)
        best_quotes = [q for q in quotes if q.price in ((mid - half) * tick, (mid + half) * tick)]
        for _ in range(self.rng.randint(1, 2)):
            if not best_quotes:
                return
            quote = self.rng.choice(best_quotes)
            assert quote.quantity is not None  # noqa: S101 - the maker's specs all have one
            self._place(
                self.taker,
                OrderSpec(
                    side="sell" if quote.side == "buy" else "buy",
                    time_in_force="ioc",
                    price=quote.price,
                    quantity=self._lots(profile.low, min(quote.quantity, profile.high)),
                ),
            )


def _wait_settled(markets: Sequence[Market], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(is_caught_up(market) for market in markets):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled within {timeout:.0f}s")
        time.sleep(SETTLE_POLL)


def _start_loops(markets: Sequence[Market], stop: threading.Event) -> list[threading.Thread]:
    def run(target: Callable[..., object], symbol: str) -> None:
        try:
            target(symbol, stop=stop)  # returns at once when a worker's loop owns the market
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(target, market.symbol), daemon=True)
        for market in markets
        for target in (run_matching_loop, run_settlement_loop)
    ]
    for thread in threads:
        thread.start()
    return threads


def _close_connections(pool: ThreadPoolExecutor, workers: int) -> None:
    """Close each pool thread's database connection, then the pool.

    The barrier holds every task until all `workers` run at once, which puts exactly one on
    each thread: while the others wait, the pool starts a thread for the next task (up to
    `workers`), and an idle pool has no other work.
    """
    barrier = threading.Barrier(workers)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        connection.close()

    for done in [pool.submit(close) for _ in range(workers)]:
        done.result()
    pool.shutdown()


def seed_history(
    *,
    markets: Sequence[Market],
    days: int,
    step_minutes: int,
    seed: int,
    inline: bool = True,
    slot_timeout: float = 60.0,
) -> HistoryReport:
    """Trade `days` of `step_minutes` slots ending now on each market that has no trade yet.

    Each slot runs under the clock shifted to its moment and ends only when every market
    is settled, so the next slot's orders find the book this one left. With `inline` the
    matching and settlement loops run in threads of this process; otherwise running
    workers do it. Raises TimeoutError when a slot does not settle in `slot_timeout` s.
    """
    started = time.monotonic()
    report = HistoryReport(markets=[], slots=0, elapsed=0.0)
    fresh = []
    for market in markets:
        if Trade.objects.filter(market=market).exists():
            report.markets.append(MarketHistory(symbol=market.symbol, skipped=True))
        else:
            fresh.append(market)
    if not fresh:
        return report
    rng = random.Random(seed)  # noqa: S311 - a demo, no secret
    moments = slot_times(end=clock.now(), days=days, step_minutes=step_minutes, rng=rng)
    assets = list({a.pk: a for m in fresh for a in (m.base, m.quote)}.values())
    maker, taker = _funded_user(MAKER_EMAIL, assets), _funded_user(TAKER_EMAIL, assets)
    quoters = [_Quoter(m, seed=seed, slots=len(moments), maker=maker, taker=taker) for m in fresh]
    stop = threading.Event()
    threads = _start_loops(fresh, stop) if inline else []
    # One thread per market places its slot's orders: the accept batcher commits the
    # markets' orders together, a third of the time of placing them one market after another.
    pool = ThreadPoolExecutor(max_workers=len(quoters), thread_name_prefix="history")
    try:
        for index, moment in enumerate(moments):
            with clock.shifted(moment):
                for placed in [pool.submit(quoter.run_slot, index) for quoter in quoters]:
                    placed.result()  # re-raises what a market's thread raised
                _wait_settled(fresh, slot_timeout)
    finally:
        _close_connections(pool, len(quoters))
        stop.set()
        for thread in threads:
            thread.join(30)
    for quoter in quoters:
        trades = Trade.objects.filter(market=quoter.market).order_by("seq")
        quoter.result.trades = trades.count()
        quoter.result.first = trades.values_list("created_at", flat=True).first()
        quoter.result.last = trades.values_list("created_at", flat=True).last()
        report.markets.append(quoter.result)
    report.slots, report.elapsed = len(moments), time.monotonic() - started
    return report
