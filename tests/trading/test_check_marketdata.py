"""check_marketdata: clean after a real pipeline run (simulate); a corrupted candle, depth
level or book_seq is reported by name and makes the command exit 1; a bad command line is
refused."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from markets.models import Candle, DepthLevel, Market
from trading.models import SettlementCursor

D = Decimal


def run_check(*argv: str) -> tuple[str, int]:
    """The command's output and exit status."""
    out = StringIO()
    try:
        call_command("check_marketdata", *argv, stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


@pytest.fixture
def simulated(redis_db: object) -> Market:
    """A market after simulate's random orders (limit, market, IOC, FOK, cancels) settled."""
    call_command("simulate", users=4, markets=1, orders=250, seed=5, stdout=StringIO())
    market = Market.objects.get(symbol="SIM0-USDT")
    assert DepthLevel.objects.filter(market=market, side="buy").exists()
    assert DepthLevel.objects.filter(market=market, side="sell").exists()
    assert Candle.objects.filter(market=market).exists()
    return market


@pytest.mark.django_db(transaction=True)
def test_clean_after_a_pipeline_run(simulated: Market) -> None:
    text, status = run_check("--seed", "1")

    assert status == 0, text
    assert text.count("ok     ") == 4
    assert "FAILED" not in text
    assert text.rstrip().endswith("market data clean")


def _candle_high(market: Market) -> str:
    Candle.objects.filter(market=market, interval="1h").update(high=D("1"))
    return "high"


def _candle_missing(market: Market) -> str:
    Candle.objects.filter(market=market, interval="1m").delete()
    return "no candle, trades say"


def _depth_quantity(market: Market) -> str:
    level = DepthLevel.objects.filter(market=market, side="buy").order_by("-price").first()
    assert level is not None
    DepthLevel.objects.filter(pk=level.pk).update(quantity=level.quantity + D("1"))
    return f"buy {level.price.normalize():f}: depth {(level.quantity + 1).normalize():f}"


def _depth_missing(market: Market) -> str:
    level = DepthLevel.objects.filter(market=market, side="sell").order_by("price").first()
    assert level is not None
    level.delete()
    return f"sell {level.price.normalize():f}: depth none"


def _depth_phantom(market: Market) -> str:
    DepthLevel.objects.create(market=market, side="sell", price=D("99999"), quantity=D("3"))
    return "sell 99999: depth 3, resting orders none"


def _book_seq(market: Market) -> str:
    last_seq = SettlementCursor.objects.get(market=market).last_seq
    Market.objects.filter(pk=market.pk).update(book_seq=last_seq - 1)
    return f"book_seq {last_seq - 1}, settlement cursor {last_seq}"


def _book_seq_behind(market: Market) -> str:
    Market.objects.filter(pk=market.pk).update(book_seq=0)
    return "book_seq 0 is behind trade"


def _crossed(market: Market) -> str:
    DepthLevel.objects.create(market=market, side="buy", price=D("99999"), quantity=D("3"))
    return "depth crossed, best bid 99999"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("_case", "corrupt", "check"),
    [
        ("candle edited", _candle_high, "candles equal their trades (sampled)"),
        ("candles deleted", _candle_missing, "candles equal their trades (sampled)"),
        ("depth level edited", _depth_quantity, "depth levels equal the resting orders"),
        ("depth level deleted", _depth_missing, "depth levels equal the resting orders"),
        ("depth level invented", _depth_phantom, "depth levels equal the resting orders"),
        ("book_seq behind the cursor", _book_seq, "book_seq equals the settlement cursor"),
        ("book_seq behind the trades", _book_seq_behind, "book_seq and depth sane"),
        ("depth crossed", _crossed, "book_seq and depth sane"),
    ],
)
def test_corruption_is_reported(
    _case: str, corrupt: Callable[[Market], str], check: str, simulated: Market
) -> None:
    detail = corrupt(simulated)

    text, status = run_check("--market", simulated.symbol, "--samples", "50")

    assert status == 1
    assert f"FAILED {check}:" in text
    assert detail in text
    assert f"market data checks failed: {check}" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "argv", "message"),
    [
        ("unknown market", ["--market", "NOPE-USDT"], "unknown market 'NOPE-USDT'"),
        ("samples not a number", ["--samples", "many"], "--samples must be a whole number"),
        ("no samples", ["--samples", "0"], "--samples must be at least 1"),
    ],
)
def test_a_bad_command_line_is_refused(_case: str, argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("check_marketdata", *argv, stdout=StringIO())
