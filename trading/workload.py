"""Seeded random order workloads: the ``simulate`` command and the pipeline tests share them.

`random_spec` draws one order (limit, IOC, FOK or market) around a mid price; `OrderFlow`
is simulate's whole sequence: which user and market come next, a placement or a cancel of
one of that user's recent orders in that market. Both are pure functions of the random
generator they are given (and, for `OrderFlow`, of which placements the exchange
accepted), so one seed always gives the same orders: the fault tests (tests/faults) compare
a faulted ``simulate --seed`` run with an uninterrupted one on that basis. Changing what a
seed draws (a share, a range, the order of the draws) changes every recorded run: the test
``test_a_seed_draws_the_same_orders_as_always`` pins simulate's sequence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from trading.validation import OrderSpec

D = Decimal
CENT = D("0.01")
# Simulate's markets: a mid price of 100 quote, ticks of a cent, lots of a thousandth.
MID, TICK, LOT = D("100"), D("0.01"), D("0.001")
# A cancel targets one of the user's last few orders in that market (open or not): recent
# enough that many are still resting or even still on their way to the engine.
CANCEL_RECENT = 8


@dataclass(frozen=True)
class OrderMix:
    """Cumulative shares of one draw: below `limit` a GTC limit, then IOC, then FOK; the
    rest are market orders. Cumulative (not per kind) so a draw compares with exactly the
    thresholds written here, never with a float sum of them."""

    limit: float = 0.70
    ioc: float = 0.80
    fok: float = 0.88

    def kind(self, roll: float) -> str:
        if roll < self.limit:
            return "limit"
        if roll < self.ioc:
            return "ioc"
        return "fok" if roll < self.fok else "market"


# 70% limit, 10% IOC, 8% FOK, 12% market orders (the pipeline tests' mix).
DEFAULT_MIX = OrderMix()
# 70% limit, 8% IOC, 7% FOK, 15% market orders: simulate's mix since its first run.
SIMULATE_MIX = OrderMix(limit=0.70, ioc=0.78, fok=0.85)


def random_spec(
    rng: random.Random,
    *,
    mid: Decimal,
    tick: Decimal,
    lot: Decimal,
    coid: str | None = None,
    side: str | None = None,
    kind: str | None = None,
    min_lots: int = 10,
    max_lots: int = 200,
    ticks: int = 20,
    mix: OrderMix = DEFAULT_MIX,
) -> OrderSpec:
    """A random OrderSpec around `mid`: a limit, IOC, FOK or market order drawn by `mix`.

    Prices lie within `ticks` ticks of `mid` (keep that inside the market's band);
    quantities are `min_lots`..`max_lots` lots. Market buys are by quote amount (mid times
    the quantity, to the cent), market sells by quantity. A given `side` or `kind` replaces
    that draw; the draws are always made in the same order (side, lots, ticks, kind), so a
    seed gives the same sequence whatever the caller fixes.
    """
    side = side or rng.choice(("buy", "sell"))
    quantity = lot * rng.randint(min_lots, max_lots)
    price = mid + tick * rng.randint(-ticks, ticks)
    roll = rng.random()
    kind = kind or mix.kind(roll)
    if kind == "limit":
        return OrderSpec(side=side, price=price, quantity=quantity, client_order_id=coid)
    if kind in ("ioc", "fok"):
        return OrderSpec(
            side=side, price=price, quantity=quantity, time_in_force=kind, client_order_id=coid
        )
    if side == "buy":
        return OrderSpec(
            side="buy",
            order_type="market",
            client_order_id=coid,
            quote_amount=(mid * quantity).quantize(CENT),
        )
    return OrderSpec(side="sell", order_type="market", quantity=quantity, client_order_id=coid)


@dataclass(frozen=True)
class Place:
    """Place `spec` for user number `user` on market number `market`."""

    n: int
    user: int
    market: int
    spec: OrderSpec


@dataclass(frozen=True)
class Cancel:
    """Cancel the order `client_order_id` of user number `user` on market number `market`."""

    n: int
    user: int
    market: int
    client_order_id: str


@dataclass
class OrderFlow:
    """Simulate's order sequence for one seed: `next()` gives the n-th operation.

    Users and markets are numbers (indexes into the caller's lists). A cancel targets one of
    the user's last `cancel_recent` placements in that market that the caller reported
    with `accepted()`, open or not: chosen from what this run sent, never from what the
    exchange has done with it, so the sequence depends on the seed alone (refusals, which
    the caller reports by not calling `accepted()`, are deterministic too).
    """

    seed: int
    users: int
    markets: int
    cancel_share: float = 0.10
    cancel_recent: int = CANCEL_RECENT
    mid: Decimal = MID
    tick: Decimal = TICK
    lot: Decimal = LOT
    _rng: random.Random = field(init=False, repr=False)
    _placed: dict[tuple[int, int], list[str]] = field(init=False, repr=False)
    _n: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - a reproducible workload
        self._placed = {}

    def next(self) -> Place | Cancel:
        rng, n = self._rng, self._n
        self._n += 1
        # choice() over a range draws exactly as over the caller's list of that length.
        user, market = rng.choice(range(self.users)), rng.choice(range(self.markets))
        mine = self._placed.setdefault((user, market), [])
        if rng.random() < self.cancel_share and mine:
            return Cancel(n, user, market, rng.choice(mine[-self.cancel_recent :]))
        spec = random_spec(
            rng,
            mid=self.mid,
            tick=self.tick,
            lot=self.lot,
            coid=f"sim{self.seed}-{n}",
            max_lots=300,
            ticks=25,
            mix=SIMULATE_MIX,
        )
        return Place(n, user, market, spec)

    def accepted(self, place: Place) -> None:
        """Record that the exchange accepted `place`: later cancels may target it."""
        self._placed[(place.user, place.market)].append(place.spec.client_order_id or "")
