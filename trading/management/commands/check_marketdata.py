"""`manage.py check_marketdata`: the market data settlement writes, checked against its sources.

    python manage.py check_marketdata [--market M ...] [--samples N] [--seed S]

Four checks, each printed with ok or FAILED and its violations; exit status 1 on any:

* candles equal the aggregation of their trades, for a random sample of periods of every
  stored interval (markets.marketdata.checks; `--seed` repeats a sample);
* book_seq is not behind the market's last trade and the depth levels are not crossed
  (the same module);
* the depth levels equal the resting orders' remaining quantity per (market, side, price):
  a GTC limit or limit-maker order, or a triggered stop limit, accepted by the engine and
  still new or partially filled is on the book;
* book_seq equals the settlement cursor: the depth levels describe the book as of the last
  settled event.

The last two read trading's orders and cursor, which is why this command lives in trading
and not beside the candle checks. Settlement writes all of it in one transaction, so the
checks run in one REPEATABLE READ snapshot: live traffic cannot make them disagree.
"""

from __future__ import annotations

import random
from argparse import ArgumentParser
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from accounts.checks import MAX_LISTED, CheckResult
from markets.errors import MarketNotFound
from markets.marketdata.checks import DEFAULT_SAMPLES, check_book, check_candles
from markets.models import Market
from markets.selectors import get_market, list_markets

_DEPTH_VS_ORDERS = """
WITH resting AS (
    SELECT market_id, side, price, sum(quantity - filled_quantity) AS quantity
    FROM trading_order
    WHERE market_id = ANY(%(ids)s::bigint[]) AND status IN ('new', 'partially_filled')
      AND accepted_seq IS NOT NULL AND time_in_force = 'gtc'
      AND (order_type IN ('limit', 'limit_maker')
           OR (order_type = 'stop_limit' AND triggered_seq IS NOT NULL))
    GROUP BY 1, 2, 3
    HAVING sum(quantity - filled_quantity) > 0
), depth AS (
    SELECT market_id, side, price, quantity FROM markets_depthlevel
    WHERE market_id = ANY(%(ids)s::bigint[])
)
SELECT m.symbol, coalesce(d.side, r.side), coalesce(d.price, r.price), d.quantity, r.quantity
FROM depth d
FULL JOIN resting r ON r.market_id = d.market_id AND r.side = d.side AND r.price = d.price
JOIN markets_market m ON m.id = coalesce(d.market_id, r.market_id)
WHERE d.quantity IS DISTINCT FROM r.quantity
ORDER BY 1, 2, 3
LIMIT %(limit)s
"""

_BOOK_SEQ_VS_CURSOR = """
SELECT m.symbol, m.book_seq, coalesce(c.last_seq, 0)
FROM markets_market m LEFT JOIN trading_settlementcursor c ON c.market_id = m.id
WHERE m.id = ANY(%(ids)s::bigint[]) AND m.book_seq <> coalesce(c.last_seq, 0)
ORDER BY 1
LIMIT %(limit)s
"""


def _rows(sql: str, markets: Sequence[Market]) -> list[tuple[Any, ...]]:  # Any: SQL rows
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": [market.pk for market in markets], "limit": MAX_LISTED})
        return list(cursor.fetchall())


def check_depth(*, markets: Sequence[Market]) -> CheckResult:
    """Every depth level equals the resting orders at its price; one line per difference."""
    found = [
        f"{symbol} {side} {price.normalize():f}: depth {_amount(stored)}, "
        f"resting orders {_amount(resting)}"
        for symbol, side, price, stored, resting in _rows(_DEPTH_VS_ORDERS, markets)
    ]
    return CheckResult("depth levels equal the resting orders", found)


def check_book_seq(*, markets: Sequence[Market]) -> CheckResult:
    """book_seq equals the settlement cursor's last_seq (0 before the first batch)."""
    found = [
        f"{symbol}: book_seq {book_seq}, settlement cursor {last_seq}"
        for symbol, book_seq, last_seq in _rows(_BOOK_SEQ_VS_CURSOR, markets)
    ]
    return CheckResult("book_seq equals the settlement cursor", found)


def _amount(value: Any) -> str:  # Any: a Decimal or None from SQL
    return "none" if value is None else f"{value.normalize():f}"


def run_marketdata_checks(
    *, markets: Sequence[Market], samples: int, seed: int
) -> list[CheckResult]:
    """Every market data check, in one REPEATABLE READ, READ ONLY snapshot (inside an open
    transaction, a test's, in that one)."""
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if not nested:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return [
            check_candles(markets=markets, samples=samples, seed=seed),
            check_book(markets=markets),
            check_depth(markets=markets),
            check_book_seq(markets=markets),
        ]


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"--samples must be a whole number, got {raw!r}") from None
    if value < 1:
        raise CommandError(f"--samples must be at least 1, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "Check candles against trades (sampled), depth levels against resting orders and"
        " book_seq against the settlement cursor; exit 1 on any violation."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--market",
            action="append",
            default=[],
            metavar="SYMBOL",
            help="market symbol; repeat for several (default: all markets, unlisted too)",
        )
        parser.add_argument(
            "--samples",
            default=str(DEFAULT_SAMPLES),
            help=f"periods sampled per market and interval (default {DEFAULT_SAMPLES})",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="the sample's seed (default: random)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        samples = _positive(str(options["samples"]))
        seed = options["seed"]
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        markets = self._markets(options["market"])
        results = run_marketdata_checks(markets=markets, samples=samples, seed=seed)
        self.stdout.write(f"market data of {len(markets)} market(s), sample seed {seed}")
        for result in results:
            status = "ok" if result.ok else "FAILED"
            self.stdout.write(f"{status:6} {result.name}: {len(result.violations)} violation(s)")
            self.stdout.write(
                "".join(f"         - {line}\n" for line in result.violations), ending=""
            )
        failed = [result.name for result in results if not result.ok]
        if failed:
            raise CommandError(f"market data checks failed: {', '.join(failed)}", returncode=1)
        self.stdout.write("market data clean")

    def _markets(self, symbols: list[str]) -> list[Market]:
        if not symbols:
            return list(list_markets(include_unlisted=True))
        markets = []
        for symbol in dict.fromkeys(symbols):
            try:
                markets.append(get_market(symbol=symbol))
            except MarketNotFound:
                raise CommandError(f"unknown market {symbol!r}") from None
        return markets
