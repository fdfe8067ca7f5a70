"""Streamed CSV exports: trades, a user's ledger and the volume summaries equal the rows
they cover (parsed back), stream as generators, name their file, and refuse bad input."""

from __future__ import annotations

import csv
import io
import types
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Asset, Posting, User
from reporting.models import MarketDailyVolume
from reporting.reports import local_bounds
from reporting.rollup import rollup
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Trade

AT = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def feed(assets: dict[str, Asset]) -> TradeFeed:
    feed = TradeFeed.create(assets, "EXP-USDT")
    feed.settle([Fill("100.25", "0.5", "buy"), Fill("99.75", "1.2", "sell")], at=AT)
    rollup()
    return feed


def _csv(response: object) -> list[dict[str, str]]:
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.django_db
def test_trades_export_equals_the_trades(staff_client: Client, feed: TradeFeed) -> None:
    params = {"market": "EXP-USDT", "start": "2026-03-10", "end": "2026-03-10"}
    response = staff_client.get(reverse("reporting:export_trades"), params)

    assert isinstance(response.streaming_content, types.GeneratorType | map)  # type: ignore[attr-defined]
    assert response["Content-Disposition"] == (
        'attachment; filename="trades_EXP-USDT_2026-03-10_2026-03-10.csv"'
    )
    rows = _csv(response)
    trades = Trade.objects.filter(market=feed.market).order_by("seq")
    assert [(r["seq"], Decimal(r["price"]), Decimal(r["quantity"])) for r in rows] == [
        (str(t.seq), t.price, t.quantity) for t in trades
    ]
    assert [r["price"] for r in rows] == ["100.25", "99.75"]
    assert {r["market"] for r in rows} == {"EXP-USDT"}


@pytest.mark.django_db
def test_trades_export_outside_the_range_is_only_the_header(
    staff_client: Client, feed: TradeFeed
) -> None:
    params = {"start": "2026-03-11", "end": "2026-03-12"}
    assert _csv(staff_client.get(reverse("reporting:export_trades"), params)) == []


@pytest.mark.django_db
def test_ledger_export_equals_the_users_postings(staff_client: Client, feed: TradeFeed) -> None:
    user = feed.buyer
    params = {"user": user.email.upper(), "start": "2026-01-01", "end": "2026-12-31"}
    response = staff_client.get(reverse("reporting:export_ledger"), params)

    assert f"ledger_user{user.pk}_2026-01-01_2026-12-31.csv" in response["Content-Disposition"]
    rows = _csv(response)
    low, high = local_bounds(date(2026, 1, 1), date(2026, 12, 31))
    postings = Posting.objects.filter(
        balance__user=user, entry__created_at__gte=low, entry__created_at__lt=high
    ).order_by("entry_id", "pk")
    assert [(int(r["entry_id"]), r["bucket"], Decimal(r["amount"])) for r in rows] == [
        (p.entry_id, p.bucket, p.amount) for p in postings
    ]
    assert rows  # the feed's holds and settlement moved the buyer's money in March


@pytest.mark.django_db
def test_volume_export_equals_the_daily_summaries(staff_client: Client, feed: TradeFeed) -> None:
    params = {"market": "EXP-USDT", "start": "2026-03-09", "end": "2026-03-10"}
    response = staff_client.get(reverse("reporting:export_volume"), params)

    rows = _csv(response)
    stored = MarketDailyVolume.objects.get(market=feed.market)
    assert [(r["period"], r["trade_count"]) for r in rows] == [
        ("2026-03-09", "0"),
        ("2026-03-10", "2"),
    ]
    assert Decimal(rows[1]["quote_volume"]) == stored.quote_volume == Decimal("169.825")
    assert Decimal(rows[1]["base_volume"]) == Decimal("1.7")
    assert "volume_EXP-USDT_day_gregorian_" in response["Content-Disposition"]


@pytest.mark.django_db
def test_volume_export_jalali_months(staff_client: Client, feed: TradeFeed) -> None:
    params = {
        "market": "EXP-USDT",
        "start": "2026-02-20",
        "end": "2026-03-20",
        "granularity": "month",
        "calendar": "jalali",
    }
    rows = _csv(staff_client.get(reverse("reporting:export_volume"), params))
    assert [(r["period"], r["first_day"], r["last_day"]) for r in rows] == [
        ("1404/12", "2026-02-20", "2026-03-20")
    ]
    assert rows[0]["trade_count"] == "2"


BAD = [
    ("reporting:export_trades", {"start": "2026-02-30"}, "Enter a date as YYYY-MM-DD."),
    ("reporting:export_trades", {"start": "2026-03-02", "end": "2026-03-01"}, "must not be after"),
    ("reporting:export_trades", {"market": "NOPE"}, "Unknown market."),
    ("reporting:export_trades", {"start": "2010-01-01", "end": "2026-01-01"}, "too long"),
    ("reporting:export_trades", {"end": "2200-01-01"}, "Choose a day between"),
    ("reporting:export_volume", {"granularity": "hour"}, "Select a valid choice"),
    ("reporting:export_volume", {"calendar": "hebrew"}, "Select a valid choice"),
    ("reporting:export_ledger", {}, "This field is required."),
    ("reporting:export_ledger", {"user": "nobody@example.com"}, "No user has this email."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "params", "message"), BAD)
def test_bad_export_parameters_are_a_400_and_change_nothing(
    staff_client: Client, feed: TradeFeed, name: str, params: dict[str, str], message: str
) -> None:
    before = (Trade.objects.count(), Posting.objects.count(), MarketDailyVolume.objects.count())
    response = staff_client.get(reverse(name), params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not response.streaming
    after = (Trade.objects.count(), Posting.objects.count(), MarketDailyVolume.objects.count())
    assert after == before


@pytest.mark.django_db
def test_exports_are_staff_only(client: Client, alice: User) -> None:
    response = client.get(reverse("reporting:export_ledger"), {"user": alice.email})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
