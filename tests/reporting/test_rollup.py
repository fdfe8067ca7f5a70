"""The rollup recomputes, never increments: re-runs, late and corrected trades, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection

from reporting import rollup as rollup_module
from reporting.checks import check_volumes
from reporting.models import (
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
    VolumeCursor,
)
from reporting.rollup import rebuild, rollup
from reporting.selectors import volume
from tests.factories import MarketFactory, UserFactory
from tests.reporting.helpers import TradeRows, raw_market
from trading.models import Trade

MODELS = (
    MarketDailyVolume,
    UserDailyVolume,
    MarketMonthlyVolume,
    UserMonthlyVolume,
    MarketYearlyVolume,
    UserYearlyVolume,
)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every summary row, without ids (a recompute may re-insert a row)."""
    out = {}
    for model in MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.name != "id"]
        out[model.__name__] = sorted(model.objects.values_list(*fields))
    return out


@pytest.fixture
def book(db: None) -> dict[str, Any]:
    market = MarketFactory.create()
    alice, bob = UserFactory.create(), UserFactory.create()
    rows = TradeRows()
    for n, at in enumerate(
        [
            datetime(2025, 3, 20, 20, 0, tzinfo=UTC),  # 23:30 Tehran, the last day of 1403
            datetime(2025, 3, 20, 20, 31, tzinfo=UTC),  # 00:01 Tehran, Nowruz 1404
            datetime(2025, 12, 31, 21, 0, tzinfo=UTC),  # 00:30 Tehran on 2026-01-01
            datetime(2026, 2, 3, 10, 0, tzinfo=UTC),
        ]
    ):
        rows.add(market, buyer=alice, seller=bob, at=at, quantity=str(n + 1))
    rows.add(market, buyer=bob, seller=bob, at=datetime(2026, 2, 3, 11, tzinfo=UTC))  # self-trade
    return {"market": market, "alice": alice, "bob": bob, "rows": rows}


def test_days_months_and_years_of_both_calendars(book: dict[str, Any]):
    assert rollup() == 5

    days = dict(MarketDailyVolume.objects.values_list("day", "trade_count"))
    assert days == {
        date(2025, 3, 20): 1,
        date(2025, 3, 21): 1,
        date(2026, 1, 1): 1,
        date(2026, 2, 3): 2,
    }
    jalali_years = dict(
        MarketYearlyVolume.objects.filter(calendar="jalali").values_list("year", "base_volume")
    )
    assert jalali_years == {1403: Decimal(1), 1404: Decimal(2 + 3 + 4 + 1)}
    gregorian = MarketYearlyVolume.objects.get(calendar="gregorian", year=2025)
    assert (gregorian.trade_count, gregorian.trader_count) == (2, 2)
    bob_feb = UserDailyVolume.objects.get(user=book["bob"], day=date(2026, 2, 3))
    # bob sold to alice (maker buy: bob paid the taker fee) and traded with himself (both).
    assert (bob_feb.trade_count, bob_feb.base_volume) == (3, Decimal(4 + 1 + 1))
    assert bob_feb.fees_paid == Decimal("0.02") + Decimal("0.01") + Decimal("0.02")
    march = MarketMonthlyVolume.objects.get(calendar="jalali", year=1404, month=1)
    assert (march.first_day, march.last_day) == (date(2025, 3, 21), date(2025, 4, 20))
    assert VolumeCursor.objects.get(market=book["market"]).last_trade_seq == 5


def test_rerun_and_rebuild_change_nothing(book: dict[str, Any]):
    rollup()
    first = snapshot()

    assert rollup() == 0
    assert rebuild(date(2020, 1, 1)) > 0
    VolumeCursor.objects.update(last_trade_seq=2)  # an overlapping run: trades seen again
    assert rollup() == 3

    assert snapshot() == first


def test_late_trade_on_an_old_day_lands_in_its_day(book: dict[str, Any]):
    rollup()
    late = datetime(2025, 3, 20, 19, 0, tzinfo=UTC)  # seq 6, stamped on the first day
    book["rows"].add(book["market"], buyer=book["alice"], seller=book["bob"], at=late)

    assert rollup() == 1

    assert MarketDailyVolume.objects.get(day=date(2025, 3, 20)).trade_count == 2
    assert MarketYearlyVolume.objects.get(calendar="jalali", year=1403).trade_count == 2
    assert all(r.ok for r in check_volumes())


def test_corrected_trade_and_rollup_volumes_end_as_a_fresh_rollup(book: dict[str, Any]):
    rollup()
    Trade.objects.filter(seq=1).update(quantity=Decimal("7"), quote_quantity=Decimal("70"))
    Trade.objects.filter(seq=4).delete()  # a trade removed by a correction
    assert not all(r.ok for r in check_volumes())  # the rows no longer match: reported

    call_command("rollup_volumes", "--from", "2025-01-01", "--market", book["market"].symbol)
    corrected = snapshot()
    for model in MODELS:
        model.objects.all().delete()
    VolumeCursor.objects.all().delete()
    rollup()

    assert snapshot() == corrected
    assert all(r.ok for r in check_volumes())
    assert not MarketDailyVolume.objects.filter(day=date(2026, 2, 3), trade_count=2).exists()


def test_small_batches_end_with_the_same_rows(book: dict[str, Any], monkeypatch):
    rollup()
    whole = snapshot()
    for model in MODELS:
        model.objects.all().delete()
    VolumeCursor.objects.all().delete()
    monkeypatch.setattr(rollup_module, "ROLLUP_BATCH", 2)
    monkeypatch.setattr(rollup_module, "MAX_PASSES", 1)
    trades = list(Trade.objects.all())
    market, start, end = book["market"], date(2025, 1, 1), date(2026, 12, 31)

    assert rollup() == 2  # stops inside a day: left open, and still answered exactly
    assert volume(market=market, start=start, end=end) == raw_market(
        trades, market, start, end, ZoneInfo("Asia/Tehran")
    )
    assert all(r.ok for r in check_volumes())
    assert rollup() + rollup() == 3

    assert snapshot() == whole


@pytest.mark.django_db(transaction=True)
def test_two_rollups_at_once_end_as_one():
    market = MarketFactory.create()
    alice, bob = UserFactory.create(), UserFactory.create()
    rows = TradeRows()
    for hour in range(40):
        rows.add(market, buyer=alice, seller=bob, at=datetime(2026, 1, 1 + hour % 20, tzinfo=UTC))
    barrier = threading.Barrier(2)
    read: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            read.append(rollup(market.symbol))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(read) == [0, 40]  # the second waited on the cursor lock, then found nothing
    assert sum(MarketDailyVolume.objects.values_list("trade_count", flat=True)) == 40
    assert all(r.ok for r in check_volumes())
