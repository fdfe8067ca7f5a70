"""Simulate trading: funded users place random orders on several markets, then audit.

    python manage.py simulate --users 20 --markets 2 --orders 5000 --seed 1

Orders (limit, market, IOC, FOK, cancels) go through the real services; the matching and
settlement loops run in threads of this command (``--inline``, the default) or, with
``--no-inline``, in whatever Celery workers already run. The command waits until every
command is applied and every event settled, runs the ledger auditor and prints a summary.
Exit status 1 when an invariant is violated.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Count, Sum

from accounts.checks import run_ledger_checks
from accounts.models import Asset, User
from accounts.services.deposits import credit_deposit
from exchange.errors import DomainError
from markets.models import Market, MarketStatus
from trading.matching import run_matching_loop
from trading.models import OPEN_STATUSES, Order, Trade
from trading.services.orders import cancel_order, place_order
from trading.services.outbox import sweep_outbox
from trading.settlement_loop import is_caught_up, run_settlement_loop
from trading.validation import OrderSpec

D = Decimal
TICK, LOT, MID = D("0.01"), D("0.001"), D("100")


def _asset(code: str, decimals: int) -> Asset:
    return Asset.objects.get_or_create(code=code, defaults={"name": code, "decimals": decimals})[0]


def _markets(count: int) -> list[Market]:
    quote = _asset("USDT", 6)
    markets = []
    for k in range(count):
        base = _asset(f"SIM{k}", 8)
        market, _ = Market.objects.get_or_create(
            symbol=f"SIM{k}-USDT",
            defaults={
                "base": base,
                "quote": quote,
                "tick_size": TICK,
                "lot_size": LOT,
                "min_quantity": LOT,
                "max_quantity": D("100000"),
                "min_notional": D("0"),
                "maker_fee": D("0.001"),
                "taker_fee": D("0.002"),
                "price_band_pct": D("10"),
                "status": MarketStatus.TRADING,
                "last_price": MID,
            },
        )
        markets.append(market)
    return markets


def _users(count: int, seed: int, markets: list[Market]) -> list[User]:
    users = []
    for i in range(count):
        user = User.objects.filter(email=f"sim-{seed}-{i}@sim.invalid").first()
        if user is None:
            user = User.objects.create_user(email=f"sim-{seed}-{i}@sim.invalid")
        for asset, amount in [(m.base, D("100000")) for m in markets] + [
            (markets[0].quote, D("100000000"))
        ]:
            credit_deposit(
                user=user, asset=asset, amount=amount, external_ref=f"sim-{seed}-{i}-{asset.code}"
            )
        users.append(user)
    return users


def _spec(rng: random.Random, n: int, seed: int) -> OrderSpec:
    side = rng.choice(("buy", "sell"))
    quantity = LOT * rng.randint(10, 300)
    price = MID + TICK * rng.randint(-25, 25)
    coid = f"sim{seed}-{n}"
    roll = rng.random()
    if roll < 0.70:
        return OrderSpec(side=side, price=price, quantity=quantity, client_order_id=coid)
    if roll < 0.85:
        tif = "ioc" if roll < 0.78 else "fok"
        return OrderSpec(
            side=side, price=price, quantity=quantity, time_in_force=tif, client_order_id=coid
        )
    if side == "buy":
        return OrderSpec(
            side="buy",
            order_type="market",
            client_order_id=coid,
            quote_amount=(MID * quantity).quantize(D("0.01")),
        )
    return OrderSpec(side="sell", order_type="market", quantity=quantity, client_order_id=coid)


class Command(BaseCommand):
    help = "Create funded users, place random orders through the real services, settle, audit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=10)
        parser.add_argument("--markets", type=int, default=1)
        parser.add_argument("--orders", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--cancel-share", type=float, default=0.10)
        parser.add_argument("--timeout", type=float, default=300.0)
        parser.add_argument(
            "--inline",
            action="store_true",
            default=True,
            help="run the loops in threads of this command (default)",
        )
        parser.add_argument(
            "--no-inline",
            dest="inline",
            action="store_false",
            help="rely on running Celery workers for the loops",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])  # noqa: S311 - a reproducible workload
        markets = _markets(options["markets"])
        users = _users(options["users"], options["seed"], markets)
        stop = threading.Event()
        threads = self._start_loops(markets, stop) if options["inline"] else []
        started = time.monotonic()
        placed = cancels = refused = 0
        try:
            for n in range(options["orders"]):
                user, market = rng.choice(users), rng.choice(markets)
                try:
                    if rng.random() < options["cancel_share"]:
                        target = (
                            Order.objects.filter(user=user, market=market, status__in=OPEN_STATUSES)
                            .order_by("?")
                            .first()
                        )
                        if target is not None:
                            cancel_order(user=user, order_id=target.pk)
                            cancels += 1
                            continue
                    place_order(user=user, market=market, spec=_spec(rng, n, options["seed"]))
                    placed += 1
                except DomainError:
                    refused += 1
            self._wait(markets, options["timeout"])
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        elapsed = time.monotonic() - started
        self._report(markets, placed=placed, cancels=cancels, refused=refused, elapsed=elapsed)

    def _start_loops(self, markets: list[Market], stop: threading.Event) -> list[threading.Thread]:
        def run(target: Any, symbol: str) -> None:
            try:
                target(symbol, stop=stop)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=run, args=(target, m.symbol), daemon=True)
            for m in markets
            for target in (run_matching_loop, run_settlement_loop)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _wait(self, markets: list[Market], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(is_caught_up(m) for m in markets):
            if time.monotonic() > deadline:
                raise CommandError(f"not settled within {timeout:.0f}s")
            sweep_outbox(min_age=timedelta(seconds=1))
            time.sleep(0.1)

    def _report(
        self, markets: list[Market], *, placed: int, cancels: int, refused: int, elapsed: float
    ) -> None:
        trades = Trade.objects.filter(market__in=markets).aggregate(
            n=Count("id"), volume=Sum("quote_quantity")
        )
        statuses = dict(
            Order.objects.filter(market__in=markets)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        report = run_ledger_checks()
        self.stdout.write(
            f"orders placed {placed}, cancels {cancels}, refused {refused}; "
            f"trades {trades['n']}, volume {trades['volume'] or 0:.2f} quote; "
            f"time {elapsed:.1f}s ({placed / elapsed:.0f} orders/s); statuses {statuses}"
        )
        if not report.ok:
            self.stdout.write(report.format())
            raise CommandError(f"ledger invariants violated: {len(report.violations)}")
        self.stdout.write("check_ledger: all invariants hold")
