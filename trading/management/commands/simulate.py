"""Simulate trading: funded users place random orders on several markets, then audit.

    python manage.py simulate --users 20 --markets 2 --orders 5000 --seed 1

Orders (limit, market, IOC, FOK, cancels) go through the real services; the matching and
settlement loops run in threads of this command (``--inline``, the default) or, with
``--no-inline``, in whatever Celery workers already run. The command waits until every
command is applied and every event settled, runs the ledger auditor and prints a summary.
Exit status 1 when an invariant is violated.

Its assets and markets (SIM0, SIM0-USDT, ...) are unlisted: run against the demo database
they never appear on the home page, in a wallet or in a market list (an older run's are
unlisted by the next one). The users are sim-<seed>-<i>@sim.invalid.

The workload (trading.workload.OrderFlow) is a pure function of the seed: which user,
market and order come next, and which order a cancel targets (one of the last few this run
placed for that user and market, open or not), never depend on what the exchange has done
so far. Commands reach
each market's input stream in the same order on every run, so the deterministic engine
gives the same trades and final order states; only a cancel whose order had already ended
may be refused here on one run and rejected by the engine on another: same effect.
The fault tests (tests/faults) compare a faulted run with an uninterrupted one this way.

An outage of PostgreSQL (a restart, a dropped connection) does not stop the run: a call it
refused is retried on a fresh connection with a bounded back-off (placements are idempotent
on their client order id), and the final wait tolerates the outage the same way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import Count, Sum
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts.checks import run_ledger_checks
from accounts.models import Asset, User
from accounts.services.deposits import credit_deposit
from exchange.errors import DomainError
from markets.models import Market, MarketStatus
from trading.matching import run_matching_loop
from trading.models import Order, Trade
from trading.services.orders import cancel_order, place_order
from trading.services.outbox import sweep_outbox
from trading.settlement_loop import is_caught_up, run_settlement_loop
from trading.workload import LOT, MID, TICK, Cancel, OrderFlow

D = Decimal
_T = TypeVar("_T")

# What an outage of PostgreSQL or Redis raises at the caller: the call is retried on a new
# connection. Anything else (a DomainError, a bug) is not an outage and is never retried.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
)
# Back-off between retries: doubling from the first delay up to the cap, so a restart of a
# few seconds costs at most about a cap's worth of extra waiting.
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 1.0


def _asset(code: str, decimals: int) -> Asset:
    return Asset.objects.get_or_create(code=code, defaults={"name": code, "decimals": decimals})[0]


def _unlisted_asset(code: str, decimals: int) -> Asset:
    """A simulation asset: inactive, so no user-facing list (home page, wallet, withdrawal
    form) shows it and it can never be withdrawn or transferred; deposits and trading work."""
    asset = Asset.objects.get_or_create(
        code=code, defaults={"name": code, "decimals": decimals, "is_active": False}
    )[0]
    if asset.is_active:  # created listed by a run before simulate had its namespace
        Asset.objects.filter(pk=asset.pk).update(is_active=False)
        asset.is_active = False
    return asset


def _markets(count: int) -> list[Market]:
    """Simulate's namespace: SIM<k> assets and SIM<k>-USDT markets, all unlisted (USDT is
    the real quote asset, left as it is)."""
    quote = _asset("USDT", 6)
    markets = []
    for k in range(count):
        base = _unlisted_asset(f"SIM{k}", 8)
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
                "listed": False,
            },
        )
        if market.listed:  # update(), not save(): the rules and their cache stay as they are
            Market.objects.filter(pk=market.pk).update(listed=False)
            market.listed = False
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


def _reset_connection() -> None:
    # A connection broken by a server restart stays broken: drop it, the next query opens
    # a new one.
    with contextlib.suppress(DatabaseError):
        connection.close()


def call_through_outages(call: Callable[[], _T], *, patience: float) -> _T:
    """``call()``, retried while PostgreSQL or Redis refuse it, for at most ``patience`` s.

    The caller makes ``call`` safe to repeat (a placement carries its client order id).
    Raises CommandError once the outage outlasts ``patience``.
    """
    deadline = time.monotonic() + patience
    delay = RETRY_FIRST_DELAY
    while True:
        try:
            return call()
        except OUTAGE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise CommandError(f"outage lasted over {patience:.0f}s: {exc}") from exc
            _reset_connection()
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)


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
            "--rate",
            type=float,
            default=0.0,
            help="at most this many commands per second (0: as fast as possible); pacing "
            "changes when commands are sent, never which",
        )
        parser.add_argument(
            "--outage-patience",
            type=float,
            default=120.0,
            help="seconds a PostgreSQL or Redis outage may refuse one call before giving up",
        )
        parser.add_argument(
            "--setup-only",
            action="store_true",
            help="create the markets and the funded users of this seed, then exit",
        )
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
        seed, patience = options["seed"], options["outage_patience"]
        markets, users = call_through_outages(
            lambda: self._set_up(options["markets"], options["users"], seed), patience=patience
        )
        if options["setup_only"]:
            self.stdout.write(f"set up {len(markets)} markets and {len(users)} users")
            return
        flow = OrderFlow(
            seed=seed,
            users=len(users),
            markets=len(markets),
            cancel_share=options["cancel_share"],
        )
        stop = threading.Event()
        threads = self._start_loops(markets, stop) if options["inline"] else []
        started = time.monotonic()
        counts = {"placed": 0, "cancels": 0, "refused": 0}
        self.refusals: Counter[str] = Counter()
        try:
            for n in range(options["orders"]):
                if options["rate"] > 0:
                    self._pace(started, n, options["rate"])
                op = flow.next()
                user, market = users[op.user], markets[op.market]
                if isinstance(op, Cancel):
                    outcome = self._send(
                        partial(cancel_order, user=user, client_order_id=op.client_order_id),
                        patience,
                    )
                    counts["cancels" if outcome else "refused"] += 1
                    continue
                order = self._send(
                    partial(place_order, user=user, market=market, spec=op.spec), patience
                )
                if order is None:
                    counts["refused"] += 1
                else:
                    flow.accepted(op)
                    counts["placed"] += 1
            self._wait(markets, options["timeout"], patience)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        elapsed = time.monotonic() - started
        self._report(markets, elapsed=elapsed, patience=patience, **counts)

    def _set_up(self, n_markets: int, n_users: int, seed: int) -> tuple[list[Market], list[User]]:
        markets = _markets(n_markets)
        return markets, _users(n_users, seed, markets)

    @staticmethod
    def _pace(started: float, n: int, rate: float) -> None:
        ahead = started + n / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)

    def _send(self, call: Callable[[], Order], patience: float) -> Order | None:
        """The order a service call returned, or None when the exchange refused it."""
        try:
            return call_through_outages(call, patience=patience)
        except DomainError as exc:
            self.refusals[exc.code] += 1
            return None

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

    def _wait(self, markets: list[Market], timeout: float, patience: float) -> None:
        """Until every command is applied and every event settled, through outages."""
        deadline = time.monotonic() + timeout

        def caught_up() -> bool:
            if all(is_caught_up(m) for m in markets):
                return True
            sweep_outbox(min_age=timedelta(seconds=1))
            return False

        while not call_through_outages(caught_up, patience=patience):
            if time.monotonic() > deadline:
                raise CommandError(f"not settled within {timeout:.0f}s")
            time.sleep(0.1)

    def _report(
        self,
        markets: list[Market],
        *,
        placed: int,
        cancels: int,
        refused: int,
        elapsed: float,
        patience: float,
    ) -> None:
        def figures() -> tuple[dict[str, Any], dict[str, int]]:
            trades = Trade.objects.filter(market__in=markets).aggregate(
                n=Count("id"), volume=Sum("quote_quantity")
            )
            statuses = dict(
                Order.objects.filter(market__in=markets)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            return trades, statuses

        trades, statuses = call_through_outages(figures, patience=patience)
        report = call_through_outages(run_ledger_checks, patience=patience)
        self.stdout.write(
            f"orders placed {placed}, cancels {cancels}, refused {refused} "
            f"{dict(self.refusals.most_common())}; "
            f"trades {trades['n']}, volume {trades['volume'] or 0:.2f} quote; "
            f"time {elapsed:.1f}s ({placed / max(elapsed, 1e-9):.0f} orders/s); "
            f"statuses {statuses}"
        )
        if not report.ok:
            self.stdout.write(report.format())
            raise CommandError(f"ledger invariants violated: {len(report.violations)}")
        self.stdout.write("check_ledger: all invariants hold")
