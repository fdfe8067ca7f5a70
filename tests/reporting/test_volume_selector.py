"""volume() equals a raw SUM over the trades for random ranges, in both calendars and zones.

Three years of random trades over two markets and three users; part rolled up, then a late
trade on an old day and fresh trades (not rolled up: open days) on top, so the selector has
to combine year, month and day rows with raw trades. Asia/Tehran (no DST since 2022, but
the 2023-2025 range crosses its last DST-free years and Jalali new years) and
America/New_York (23- and 25-hour days).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.checks import check_volumes
from reporting.rollup import rollup
from reporting.selectors import volume
from tests.factories import MarketFactory, UserFactory
from tests.reporting.helpers import TradeRows, raw_market, raw_user
from trading.models import Trade

FIRST = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 86400


@pytest.fixture(params=["Asia/Tehran", "America/New_York"])
def history(request: pytest.FixtureRequest, db: None, settings: Any) -> dict[str, Any]:
    settings.REPORTING_TIME_ZONE = request.param
    rng = random.Random(11)
    markets = [MarketFactory.create(), MarketFactory.create()]
    users = [UserFactory.create() for _ in range(3)]
    rows = TradeRows()

    def trade(at: datetime) -> None:
        market = rng.choice(markets)
        buyer, seller = rng.choice(users), rng.choice(users)
        rows.add(
            market,
            buyer=buyer,
            seller=seller,
            at=at,
            quantity=f"{rng.randint(1, 5000)}.{rng.randint(0, 9999):04d}",
            price=f"{rng.randint(1, 900)}.{rng.randint(0, 99):02d}",
            maker=rng.choice(["buy", "sell"]),
            maker_fee=f"0.{rng.randint(0, 999):03d}",
            taker_fee=f"0.{rng.randint(0, 999):03d}",
        )

    for _ in range(400):
        trade(FIRST + timedelta(seconds=rng.randrange(SPAN_SECONDS)))
    rollup()
    for _ in range(15):  # late trades on old days, and new ones: not rolled up
        trade(FIRST + timedelta(seconds=rng.randrange(SPAN_SECONDS)))
    return {
        "zone": ZoneInfo(request.param),
        "markets": markets,
        "users": users,
        "trades": list(Trade.objects.all()),
    }


days = st.dates(min_value=date(2022, 12, 25), max_value=date(2026, 1, 10))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=days, b=days, calendar=st.sampled_from(["gregorian", "jalali"]), who=st.integers(0, 3))
def test_equals_raw_sum(history: dict[str, Any], a: date, b: date, calendar: str, who: int):
    start, end = min(a, b), max(a, b)
    zone, trades = history["zone"], history["trades"]
    for market in history["markets"]:
        if who == 3:
            got = volume(market=market, start=start, end=end, calendar=calendar)
            assert got == raw_market(trades, market, start, end, zone)
        else:
            user = history["users"][who]
            got = volume(market=market.symbol, user=user, start=start, end=end, calendar=calendar)
            assert got == raw_user(trades, market, user, start, end, zone)


def test_all_markets_answer_per_symbol(history: dict[str, Any]):
    start, end = date(2023, 1, 1), date(2025, 12, 31)
    got = volume(market=None, start=start, end=end, calendar="jalali")
    assert got == {
        m.symbol: raw_market(history["trades"], m, start, end, history["zone"])
        for m in history["markets"]
    }
    assert sum(v.trade_count for v in got.values()) == len(history["trades"])  # type: ignore[union-attr]


def test_rolled_up_rows_pass_the_check_and_equal_the_trades(history: dict[str, Any]):
    rollup()
    results = check_volumes()
    assert all(r.ok for r in results), [r.violations for r in results]
    # Whole years only (one yearly row per market) after the rollup caught up.
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    for market in history["markets"]:
        got = volume(market=market, start=start, end=end)
        assert got == raw_market(history["trades"], market, start, end, history["zone"])
