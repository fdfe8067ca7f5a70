"""The forecast over real candles: the glue, the `forecast` command and the staff page.

The history is settled through the real settlement (TradeFeed): one trade a day at noon
UTC, the days before today, with closes falling 5 then rising 1 (USDT, unit fixed:1), so
the truth is known: the chain must find order 1 and the pattern, and the backtest must
show it beats the random walk. Every bad input is refused with a clear error and
changes nothing (the forecast only reads; counts of trades and candles are compared).
"""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import Asset, User
from exchange import clock
from markets.errors import MarketNotFound
from markets.marketdata.errors import InvalidInterval
from markets.models import Candle
from reporting.forecast import InvalidForecastParameter, TooLittleHistory, forecast
from tests.conftest import PASSWORD
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Trade

DAYS = 60


def settle_daily(feed: TradeFeed, prices: list[Decimal]) -> None:
    today = clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for back, price in zip(range(len(prices), 0, -1), prices, strict=True):
        feed.settle([Fill(price, "0.01", "buy")], at=today - timedelta(days=back, hours=-12))


def pattern_prices(days: int) -> list[Decimal]:
    prices, price = [], Decimal("1000.00")
    for day in range(days):
        price += Decimal(-5 if day % 2 == 0 else 1)
        prices.append(price)
    return prices  # 995, 996, 991, 992, ... (ends on a +1 move)


@pytest.fixture
def pattern_market(assets: dict[str, Asset]) -> str:
    feed = TradeFeed.create(assets, "FC-USDT")
    settle_daily(feed, pattern_prices(DAYS))
    return "FC-USDT"


@pytest.fixture
def short_market(assets: dict[str, Asset]) -> str:
    feed = TradeFeed.create(assets, "FS-USDT")
    settle_daily(feed, [Decimal("100.00"), Decimal("101.00"), Decimal("99.00")])
    return "FS-USDT"


def counts() -> tuple[int, int]:
    return Trade.objects.count(), Candle.objects.count()


@pytest.mark.django_db
def test_glue_reads_the_candles_and_finds_the_pattern(pattern_market: str) -> None:
    result = forecast(pattern_market, unit="fixed:1", horizon=6, paths=500, seed=3)
    assert result.candles == DAYS
    assert result.last_close == pattern_prices(DAYS)[-1]
    assert result.chain.order == 1
    assert result.pattern.repetitions == (DAYS - 1) // 2
    assert result.continuation_exact > 0.8
    assert abs(result.continuation_mc - result.continuation_exact) < 4 * 0.02
    last = result.last_close
    # The history ends on +1, so the median path goes -5, +1, -5, ...: prices at the tick.
    medians = [prices[2] for _step, prices in result.fan]
    assert medians == [last - 5, last - 4, last - 9, last - 8, last - 13, last - 12]
    assert all(p.as_tuple().exponent == -2 for _s, prices in result.fan for p in prices)
    ((level, below, above),) = result.levels
    assert level == last
    assert below + above == pytest.approx(1.0)
    assert result.calibration.beats_baseline


@pytest.mark.django_db
def test_glue_is_seeded(pattern_market: str) -> None:
    one = forecast(pattern_market, unit="vol", horizon=5, paths=300, seed=9)
    two = forecast(pattern_market, unit="vol", horizon=5, paths=300, seed=9)
    assert one.fan == two.fan
    assert one.continuation_mc == two.continuation_mc
    assert one.unit == Decimal("1.00")  # the median |move|: 30 moves of +1, 29 of -5


@pytest.mark.django_db
def test_command_prints_the_forecast(pattern_market: str) -> None:
    out = StringIO()
    call_command(
        "forecast",
        "--market=fc-usdt",
        "--unit=fixed:1",
        "--horizon=4",
        "--paths=400",
        "--pattern=-5,1",
        "--level=900",
        stdout=out,
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"Market FC-USDT at 1d: {DAYS} candles, last close 880.00")
    assert "Markov order (BIC): 1; BIC by order:" in lines[2]
    assert any(line.startswith("Pattern continues all 4 steps: Monte Carlo ") for line in lines)
    assert any(line.startswith("  1: ") for line in lines)
    assert "P(end below 900) = 1.0000; P(end above 900) = 0.0000" in lines
    assert lines[-1].startswith("Verdict: The chain beats the random-walk baseline")


BAD_OPTIONS = [
    (["--market=NOPE-USDT"], "No such market"),
    (["--interval=7d"], "The interval must be one of"),
    (["--horizon=0"], "horizon must be a whole number from 1 to 365"),
    (["--horizon=366"], "horizon must be a whole number"),
    (["--horizon=ten"], "horizon must be a whole number"),
    (["--pattern=-5,0"], "The pattern must be"),
    (["--pattern=x"], "The pattern must be"),
    (["--pattern=1,1,1,1,1,1,1"], "The pattern must be"),
    (["--pattern=-11,1"], "The pattern must be"),
    (["--unit=fixed:0"], 'The unit must be "vol"'),
    (["--unit=fixed:abc"], 'The unit must be "vol"'),
    (["--unit=median"], 'The unit must be "vol"'),
    (["--paths=10"], "paths must be a whole number from 100 to 100000"),
    (["--seed=-1"], "seed must be a whole number"),
    (["--level=abc"], "Each level must be a positive price"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_command_refuses_bad_input(short_market: str, options: list[str], message: str) -> None:
    before = counts()
    with pytest.raises(CommandError, match=message):
        call_command("forecast", f"--market={short_market}", *options, stdout=StringIO())
    assert counts() == before


@pytest.mark.django_db
def test_too_little_history_is_refused(short_market: str) -> None:
    before = counts()
    with pytest.raises(CommandError, match=r"FS-USDT has 3 candles at 1d; .* at least 41"):
        call_command("forecast", f"--market={short_market}", stdout=StringIO())
    with pytest.raises(TooLittleHistory) as caught:
        forecast(short_market)
    assert (caught.value.code, caught.value.field) == ("forecast_too_little_history", "market")
    assert counts() == before


@pytest.mark.django_db
def test_glue_errors_carry_code_and_field(short_market: str) -> None:
    with pytest.raises(InvalidForecastParameter) as caught:
        forecast(short_market, pattern="0")
    assert (caught.value.code, caught.value.field) == ("forecast_parameter_invalid", "pattern")
    with pytest.raises(MarketNotFound):
        forecast("NOPE-USDT")
    with pytest.raises(InvalidInterval):
        forecast(short_market, interval="1D")


def page(client: Client, symbol: str, **params: str) -> object:
    return client.get(reverse("reporting:forecast", args=[symbol]), params)


@pytest.mark.django_db
def test_page_is_behind_the_admins_door(client: Client, alice: User, staff: User) -> None:
    response = page(client, "FC-USDT")
    assert response.status_code == 302  # anonymous: to the admin's sign-in
    assert response["Location"].startswith(reverse("admin:login"))
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})
    assert page(client, "FC-USDT").status_code == 403
    client.logout()
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    response = page(client, "FC-USDT")  # staff whose session has no second factor
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_page_shows_the_forecast(staff_client: Client, pattern_market: str) -> None:
    response = page(staff_client, "fc-usdt", unit="fixed:1", horizon="5", paths="300")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<dd id="order">1</dd>' in html
    assert "The chain beats the random-walk baseline" in html
    assert 'id="fan-data"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert response.context["result"].horizon == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"horizon": "abc"}, "horizon", "The horizon must be a whole number"),
        ({"pattern": "1,,2"}, "pattern", "The pattern must be"),
        ({"unit": "fixed:-3"}, "unit", 'The unit must be "vol"'),
        ({"paths": "99999999"}, "paths", "Ensure this value has at most 7 characters"),
        ({"seed": "x"}, "seed", "The seed must be a whole number"),
        ({"levels": "100,abc"}, "levels", "Each level must be a positive price"),
        ({"interval": "7d"}, "interval", "Select a valid choice"),
    ],
)
def test_page_shows_bad_parameters_as_form_errors(
    staff_client: Client, short_market: str, params: dict[str, str], field: str, message: str
) -> None:
    before = counts()
    response = page(staff_client, short_market, **params)
    assert response.status_code == 200
    assert response.context["result"] is None
    assert any(message in error for error in response.context["form"].errors[field])
    assert counts() == before


@pytest.mark.django_db
def test_page_unknown_market_and_short_history_are_form_errors(
    staff_client: Client, short_market: str
) -> None:
    for symbol, message in [("NOPE-USDT", "No such market."), (short_market, "at least 41")]:
        response = page(staff_client, symbol)
        assert response.status_code == 200
        errors = response.context["form"].non_field_errors()
        assert any(message in error for error in errors), errors
