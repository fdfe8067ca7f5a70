"""The nightly tier assignment from the per-user daily rows, its command, and the trader's
fees page (tier, 30-day volume, schedule, the rates each market charges them)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from markets.models import FeeTier, Market, UserFeeTier
from reporting.calendars import local_today
from reporting.rollup import rollup
from reporting.tiers import assign_fee_tiers, thirty_day_volumes
from tests.factories import AssetFactory, MarketFactory, UserFactory
from tests.reporting.helpers import TradeRows

pytestmark = pytest.mark.django_db
D = Decimal


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(settings.REPORTING_TIME_ZONE))


@pytest.fixture
def tiers() -> dict[str, FeeTier]:
    rows = [("Base", "0", "0.0009", "0.0019"), ("Pro", "1000", "0.0005", "0.0015")]
    rows.append(("VIP", "100000", "0.0001", "0.0005"))
    return {
        name: FeeTier.objects.create(
            name=name, min_volume_30d=D(lo), maker_fee=D(maker), taker_fee=D(taker)
        )
        for name, lo, maker, taker in rows
    }


@pytest.fixture
def markets() -> dict[str, Market]:
    usdt = AssetFactory.create(code="USDT", decimals=6)
    btc, irt = AssetFactory.create(code="BTC"), AssetFactory.create(code="IRT", decimals=0)
    eth, odd = AssetFactory.create(code="ETH"), AssetFactory.create(code="ODD")
    return {
        "BTC-USDT": MarketFactory.create(base=btc, quote=usdt, last_price=D("50000")),
        "USDT-IRT": MarketFactory.create(base=usdt, quote=irt, last_price=D("100000")),
        "ETH-BTC": MarketFactory.create(base=eth, quote=btc),
        "ETH-ODD": MarketFactory.create(base=eth, quote=odd),  # no way to USDT: not counted
    }


def test_the_30_closed_days_are_counted_in_the_reference_asset(tiers, markets):
    today = date(2026, 6, 15)
    alice, bob, carol = UserFactory.create(), UserFactory.create(), UserFactory.create()
    rows = TradeRows()
    btc_usdt, usdt_irt = markets["BTC-USDT"], markets["USDT-IRT"]
    # alice: 600 USDT + 40,000,000 IRT (= 400 USDT) + 0.01 BTC (= 500 USDT) in the window
    rows.add(btc_usdt, buyer=alice, seller=bob, at=at(today - timedelta(days=30)), price="600")
    rows.add(usdt_irt, buyer=alice, seller=bob, at=at(today - timedelta(days=1)), price="40000000")
    rows.add(
        markets["ETH-BTC"], buyer=alice, seller=bob, at=at(today - timedelta(days=3)), price="0.01"
    )
    rows.add(
        markets["ETH-ODD"],
        buyer=alice,
        seller=bob,
        at=at(today - timedelta(days=2)),
        price="999999",
    )
    # outside the window: the 31st day back, and today (not closed)
    rows.add(btc_usdt, buyer=carol, seller=bob, at=at(today - timedelta(days=31)), price="9000")
    rows.add(btc_usdt, buyer=carol, seller=bob, at=at(today), price="9000")
    rollup()

    volumes = thirty_day_volumes(today)
    assert volumes[alice.pk] == D("1500")
    assert volumes[bob.pk] == D("1500")  # the other side of the same trades
    assert carol.pk not in volumes
    assert thirty_day_volumes(today, alice.pk) == {alice.pk: D("1500")}

    assert assign_fee_tiers(today) == 2
    assigned = {row.user_id: row for row in UserFeeTier.objects.all()}
    assert assigned[alice.pk].tier_id == tiers["Pro"].pk
    assert assigned[alice.pk].volume_30d == D("1500")
    assert carol.pk not in assigned

    first = sorted(UserFeeTier.objects.values_list("user_id", "tier_id", "volume_30d"))
    assert assign_fee_tiers(today) == 2  # a re-run: the same rows
    assert sorted(UserFeeTier.objects.values_list("user_id", "tier_id", "volume_30d")) == first

    # A month on, nothing traded: the users fall back to the 0 threshold, still with a row.
    assign_fee_tiers(today + timedelta(days=31))
    assert set(UserFeeTier.objects.values_list("tier_id", "volume_30d")) == {
        (tiers["Base"].pk, D("0"))
    }


def test_no_tier_reached_means_market_fees(markets):
    FeeTier.objects.create(
        name="Pro", min_volume_30d=D("1000"), maker_fee=D("0.0005"), taker_fee=D("0.0015")
    )
    today = date(2026, 6, 15)
    alice, bob = UserFactory.create(), UserFactory.create()
    TradeRows().add(markets["BTC-USDT"], buyer=alice, seller=bob, at=at(today - timedelta(days=2)))
    rollup()
    assign_fee_tiers(today)
    assert UserFeeTier.objects.get(user=alice).tier_id is None
    assert UserFeeTier.objects.get(user=alice).volume_30d == D("10")


def test_the_command_assigns_and_refuses_a_bad_day(tiers, markets, capsys):
    today = date(2026, 6, 15)
    alice, bob = UserFactory.create(), UserFactory.create()
    TradeRows().add(
        markets["BTC-USDT"], buyer=alice, seller=bob, at=at(today - timedelta(days=1)), price="2000"
    )
    rollup()
    for bad in ("2026-13-01", "yesterday", ""):
        with pytest.raises(CommandError, match="--day"):
            call_command("assign_fee_tiers", "--day", bad)
        assert not UserFeeTier.objects.exists()
    call_command("assign_fee_tiers", "--day", today.isoformat())
    assert "fee tiers assigned: 2 user(s)" in capsys.readouterr().out
    assert UserFeeTier.objects.get(user=alice).tier_id == tiers["Pro"].pk


def test_the_fees_page_shows_tier_volume_and_rates(client, tiers, markets):
    alice, bob = UserFactory.create(), UserFactory.create()
    today = local_today()
    rows = TradeRows()
    rows.add(
        markets["BTC-USDT"],
        buyer=alice,
        seller=bob,
        at=at(today - timedelta(days=2)),
        price="1200",
        taker_fee="0.5",
    )
    rollup()
    assign_fee_tiers(today)
    client.force_login(alice)

    page = client.get(reverse("fees"))

    assert page.status_code == 200
    fees = page.context["fees"]
    assert fees.tier.name == "Pro"
    assert fees.volume_30d == D("1200")
    assert fees.next_tier.name == "VIP"
    assert fees.to_next_tier == D("98800")
    by_symbol = {row.market.symbol: row for row in fees.markets}
    btc = by_symbol["BTC-USDT"]  # market 0.1% / 0.2%, Pro 0.05% / 0.15%
    assert (btc.your_maker_fee, btc.your_taker_fee) == (D("0.0005"), D("0.0015"))
    assert btc.volume.trade_count == 1
    assert btc.volume.quote_volume == D("1200")
    html = page.content.decode()
    for text in ("Pro", "1200 USDT", "98800 USDT", "0.05% / 0.15%", "0.1% / 0.2%"):
        assert text in html, text


def test_the_fees_page_without_a_tier(client, markets):
    user = UserFactory.create()
    client.force_login(user)
    page = client.get(reverse("fees"))
    assert page.status_code == 200
    assert page.context["fees"].tier is None
    assert "Standard (market fees)" in page.content.decode()


def test_the_fees_page_needs_a_sign_in_and_is_read_only(client, alice: User):
    response = client.get(reverse("fees"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    client.force_login(alice)
    assert client.post(reverse("fees")).status_code == 405
    assert not UserFeeTier.objects.exists()
