"""Staff report pages: the admin's door (staff + TOTP), each page with data, the Jalali
switch and the Persian page, and every bad filter refused with a 400 that changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Asset, User
from reporting.models import Calendar, MarketDailyVolume, MarketMonthlyVolume
from reporting.reports import Granularity, periods
from reporting.rollup import rollup
from tests.accounts.web_support import enable_totp
from tests.conftest import PASSWORD
from tests.markets.marketdata_helpers import Fill, TradeFeed

PAGES = ["reporting:index", "reporting:volume", "reporting:traders", "reporting:funds"]
# 2026-03-21 12:00 UTC is 1405/01/01 (Nowruz) 15:30 in Tehran; 2026-03-20 is 1404/12/29.
NOWRUZ = datetime(2026, 3, 21, 12, 0, tzinfo=UTC)
EVE = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def feed(assets: dict[str, Asset]) -> TradeFeed:
    feed = TradeFeed.create(assets, "RPT-USDT")
    feed.settle([Fill("100.00", "2", "buy")], at=EVE)
    feed.settle([Fill("110.00", "1", "sell"), Fill("120.00", "0.5", "buy")], at=NOWRUZ)
    rollup()
    return feed


def _get(client: Client, name: str, **params: str) -> Any:
    return client.get(reverse(name), params)


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_sign_in(client: Client, name: str) -> None:
    response = _get(client, name)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", [*PAGES, "reporting:export_trades"])
def test_non_staff_gets_403(client: Client, alice: User, name: str) -> None:
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})
    assert _get(client, name).status_code == 403


@pytest.mark.django_db
def test_staff_without_2fa_is_sent_to_set_it_up(client: Client, staff: User) -> None:
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    response = client.get(reverse("reporting:volume"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("mfa_activate_totp")
    assert "Staff must set up two-factor authentication" in response.content.decode()


@pytest.mark.django_db
def test_staff_with_totp_but_a_password_only_session_is_asked_for_a_code(
    client: Client, staff: User
) -> None:
    enable_totp(staff)
    client.force_login(staff)  # a session that never passed the TOTP step
    response = client.get(reverse("reporting:funds"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("mfa_reauthenticate"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_for_2fa_staff(staff_client: Client, feed: TradeFeed, name: str) -> None:
    response = _get(staff_client, name, start="2026-03-01", end="2026-03-31")
    assert response.status_code == 200


@pytest.mark.django_db
def test_volume_page_days_match_the_trades(staff_client: Client, feed: TradeFeed) -> None:
    response = _get(
        staff_client, "reporting:volume", market="RPT-USDT", start="2026-03-20", end="2026-03-21"
    )
    chart = response.context["chart"]
    assert chart["labels"] == ["2026-03-20", "2026-03-21"]
    assert chart["series"]["quote_volume"] == ["200", "170"]  # 100*2; 110*1 + 120*0.5
    assert chart["series"]["trades"] == [1, 2]
    body = response.content.decode()
    assert 'id="report-chart-data"' in body
    assert "/static/vendor/chartjs/chart.umd.min.js" in body


@pytest.mark.django_db
def test_jalali_months_split_at_nowruz(staff_client: Client, feed: TradeFeed) -> None:
    response = _get(
        staff_client,
        "reporting:volume",
        market="RPT-USDT",
        start="2026-03-01",
        end="2026-04-21",
        granularity="month",
        calendar="jalali",
    )
    chart = response.context["chart"]
    assert chart["labels"] == ["1404/12", "1405/01", "1405/02"]
    assert [(r.period.first_day, r.period.whole) for r in response.context["rows"]] == [
        (date(2026, 3, 1), False),
        (date(2026, 3, 21), True),
        (date(2026, 4, 21), False),
    ]
    assert chart["series"]["quote_volume"] == ["200", "170", "0"]


@pytest.mark.django_db
def test_whole_jalali_month_reads_its_summary_row(staff_client: Client, feed: TradeFeed) -> None:
    esfand = periods(date(2026, 2, 20), date(2026, 3, 20), Granularity.MONTH, Calendar.JALALI)[0]
    assert esfand.whole
    assert esfand.label == "1404/12"
    row = MarketMonthlyVolume.objects.get(
        market=feed.market, calendar="jalali", year=1404, month=12
    )
    response = _get(
        staff_client,
        "reporting:volume",
        market="RPT-USDT",
        start=esfand.first_day.isoformat(),
        end=esfand.last_day.isoformat(),
        granularity="month",
        calendar="jalali",
    )
    assert response.context["rows"][0].quote_volume == row.quote_volume == Decimal("200")


@pytest.mark.django_db
def test_traders_page_counts_and_top_users(staff_client: Client, feed: TradeFeed) -> None:
    response = _get(
        staff_client, "reporting:traders", market="RPT-USDT", start="2026-03-20", end="2026-03-21"
    )
    assert response.context["chart"]["series"]["active"] == [2, 2]
    top = response.context["top"]
    assert {u.email for u in top} == {feed.buyer.email, feed.seller.email}
    assert all(u.quote_volume == Decimal("370") for u in top)


@pytest.mark.django_db
def test_persian_page_is_rtl_with_jalali_labels(staff_client: Client, feed: TradeFeed) -> None:
    staff_client.cookies["django_language"] = "fa"
    response = _get(
        staff_client,
        "reporting:volume",
        market="RPT-USDT",
        start="2026-03-20",
        end="2026-03-21",
        calendar="jalali",
    )
    body = response.content.decode()
    assert 'dir="rtl"' in body
    assert "1404/12/29" in body
    assert "1405/01/01" in body
    assert "حجم" in body  # the page's own strings are translated


@pytest.mark.django_db
def test_admin_index_links_the_reports(staff_client: Client) -> None:
    response = staff_client.get(reverse("admin:index"))
    assert reverse("reporting:index") in response.content.decode()


BAD = [
    ({"start": "2026-13-01"}, "Enter a date as YYYY-MM-DD."),
    ({"end": "yesterday"}, "Enter a date as YYYY-MM-DD."),
    ({"start": "1900-01-01"}, "Choose a day between"),
    ({"start": "2026-03-20", "end": "2026-03-19"}, "must not be after"),
    ({"market": "NOPE-USDT"}, "Unknown market."),
    ({"start": "2000-01-01", "end": "2026-01-01"}, "The range is too long"),
    ({"granularity": "week"}, "Select a valid choice"),
    ({"calendar": "lunar"}, "Select a valid choice"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "message"), BAD)
@pytest.mark.parametrize("name", ["reporting:volume", "reporting:traders"])
def test_bad_filters_are_a_400_with_the_error_and_change_nothing(
    staff_client: Client, feed: TradeFeed, name: str, params: dict[str, str], message: str
) -> None:
    before = list(MarketDailyVolume.objects.order_by("pk").values())
    response = _get(staff_client, name, **params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(MarketDailyVolume.objects.order_by("pk").values()) == before


@pytest.mark.django_db
def test_funds_page_refuses_a_reversed_range(staff_client: Client) -> None:
    response = _get(staff_client, "reporting:funds", start="2026-02-02", end="2026-02-01")
    assert response.status_code == 400
    assert "must not be after" in response.content.decode()


@pytest.mark.django_db
def test_reports_index_links_each_markets_forecast(staff_client: Client, feed: TradeFeed) -> None:
    response = staff_client.get(reverse("reporting:index"))
    assert reverse("reporting:forecast", args=["RPT-USDT"]) in response.content.decode()
