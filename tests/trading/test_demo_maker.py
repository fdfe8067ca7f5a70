"""The demo maker: quotes both sides of the demo markets inside their rules, through the real
services and loops; takes liquidity so trades appear; is funded once by credit_deposit and
never mints; sizes down on a short balance; cancels its quotes on SIGTERM; refuses to run
when DEMO_MAKER_ENABLED is off."""

from __future__ import annotations

import os
import random
import signal
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from accounts.models import Asset, Deposit, EntryKind, JournalEntry, User
from accounts.selectors import get_balance
from markets.models import Market, MarketStatus
from tests.conftest import assert_ledger_clean, fund
from tests.factories import MarketFactory
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.demo_maker import (
    FUNDS,
    LEVELS,
    MAKER_EMAIL,
    MakerReport,
    MarketMaker,
    fund_maker,
    ladder,
    min_lots,
    run_demo_maker,
    walk_step,
)
from trading.errors import OrderNotOpen
from trading.history import PROFILES
from trading.management.commands.demo_maker import _on_signals
from trading.models import OPEN_STATUSES, Order, OrderStatus, OrderType, Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec, band_limits

D = Decimal
SYMBOLS = sorted(PROFILES)


@pytest.fixture
def demo(redis_db: object) -> None:
    call_command("seed_demo", stdout=StringIO())


def _maker_command(*argv: str) -> str:
    out = StringIO()
    call_command("demo_maker", *argv, stdout=out)
    return out.getvalue()


def _maker() -> User:
    return User.objects.get(email=MAKER_EMAIL)


def _open_quotes(market: Market) -> list[Order]:
    return list(Order.objects.filter(user=_maker(), market=market, status__in=OPEN_STATUSES))


def _markets() -> list[Market]:
    return list(Market.objects.filter(symbol__in=SYMBOLS).select_related("base", "quote"))


def _assert_within_rules(order: Order, market: Market) -> None:
    assert order.price is not None
    assert order.quantity is not None
    assert order.price % market.tick_size == 0
    assert order.quantity % market.lot_size == 0
    assert market.min_quantity <= order.quantity <= market.max_quantity
    assert order.price * order.quantity >= market.min_notional
    band = band_limits(market)
    assert band is not None
    assert band[0] <= order.price <= band[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_one_round_quotes_both_sides_of_every_demo_market_within_its_rules() -> None:
    with loops_running(SYMBOLS):
        text = _maker_command("--once", "--seed", "3")
        wait_settled(SYMBOLS)

    assert "[demo-maker] stopped: 1 rounds" in text
    for market in _markets():
        quotes = _open_quotes(market)
        bids = [o for o in quotes if o.side == "buy"]
        asks = [o for o in quotes if o.side == "sell"]
        assert len(bids) == len(asks) == LEVELS
        assert all(o.accepted_seq is not None for o in quotes)  # the engine has them
        assert max(o.price or 0 for o in bids) < min(o.price or 0 for o in asks)
        for order in quotes:
            _assert_within_rules(order, market)
    assert not Trade.objects.exists()  # quoting alone never crosses itself
    assert not Order.objects.filter(status=OrderStatus.REJECTED).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_funded_once_by_credit_deposit_and_never_minting() -> None:
    with loops_running(SYMBOLS):
        _maker_command("--once")
        _maker_command("--rounds", "2", "--interval", "0.05")
        wait_settled(SYMBOLS)

    maker = _maker()
    assert not maker.has_usable_password()
    deposits = Deposit.objects.filter(user=maker)
    assert deposits.count() == len(FUNDS)  # a second run credited nothing
    assert JournalEntry.objects.filter(kind=EntryKind.DEPOSIT, deposit__user=maker).count() == 4
    for deposit in deposits.select_related("asset"):
        assert deposit.external_ref == f"demo-maker:{MAKER_EMAIL}:{deposit.asset.code}"
        assert deposit.amount == D(FUNDS[deposit.asset.code])
        # No trade yet: what it holds is exactly what was deposited, part of it locked.
        holding = get_balance(user=maker, asset=deposit.asset)
        assert holding.total == deposits.filter(asset=deposit.asset).aggregate(s=Sum("amount"))["s"]
        assert holding.locked > 0
    assert_ledger_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_requoting_cancels_stale_quotes_and_keeps_one_ladder() -> None:
    with loops_running(SYMBOLS):
        _maker_command("--rounds", "4", "--interval", "0.05", "--seed", "8")
        wait_settled(SYMBOLS)

    maker = _maker()
    assert Order.objects.filter(user=maker, status=OrderStatus.CANCELED).exists()
    for market in _markets():
        quotes = _open_quotes(market)
        assert sorted(o.side for o in quotes) == ["buy"] * LEVELS + ["sell"] * LEVELS
        assert len({o.price for o in quotes}) == 2 * LEVELS
    assert not Trade.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(("symbol", "seed"), [("USDT-IRT", 5), ("BTC-USDT", 6), ("ETH-USDT", 7)])
def test_taking_liquidity_makes_trades_and_moves_the_last_price(symbol: str, seed: int) -> None:
    markets = _markets()
    report = MakerReport()
    maker = fund_maker(assets=[a for m in markets for a in (m.base, m.quote)])
    market = next(m for m in markets if m.symbol == symbol)
    quoter = MarketMaker(market=market, user=maker, seed=seed, report=report)
    with loops_running(SYMBOLS):
        quoter.round(now=0.0)  # quotes and schedules the first take
        wait_settled(SYMBOLS)
        for step in range(1, 9):
            quoter.round(now=1000.0 * step)  # always past the next take time
            wait_settled(SYMBOLS)

    assert report.taken == 8
    assert not report.refused
    trades = Trade.objects.filter(market=market)
    assert trades.count() >= report.taken
    takers = Order.objects.filter(user=maker, market=market).exclude(time_in_force="gtc")
    assert {o.order_type for o in takers} == {OrderType.MARKET, OrderType.LIMIT}
    market.refresh_from_db()
    assert market.last_price == trades.order_by("-seq").values_list("price", flat=True).first()
    assert_ledger_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_sigterm_cancels_every_open_quote_before_exiting() -> None:
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    with loops_running(SYMBOLS):
        timer.start()
        try:
            text = _maker_command("--interval", "0.1")
        finally:
            timer.cancel()
        wait_settled(SYMBOLS)

    assert "[demo-maker] stopped" in text
    assert Order.objects.filter(user=_maker()).exists()
    assert not Order.objects.filter(user=_maker(), status__in=OPEN_STATUSES).exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_stop_event_withdraws_the_quotes() -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with loops_running(SYMBOLS):
        report = run_demo_maker(markets=_markets(), seed=2, interval=0.1, rounds=None, stop=stop)
        wait_settled(SYMBOLS)

    assert report.rounds >= 1
    assert not Order.objects.filter(user=_maker(), status__in=OPEN_STATUSES).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_disabled_setting_refuses_and_changes_nothing(settings: object) -> None:
    settings.DEMO_MAKER_ENABLED = False  # type: ignore[attr-defined]

    with pytest.raises(CommandError, match="DEMO_MAKER_ENABLED"):
        _maker_command("--once")

    assert not User.objects.filter(email=MAKER_EMAIL).exists()
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    ("_case", "argv", "message"),
    [
        ("unknown market", ["--markets", "DOGE-USDT"], "not a trading market: DOGE-USDT"),
        ("empty markets", ["--markets", ","], "names no market"),
        ("bad interval", ["--interval", "fast"], "--interval must be a number"),
        ("interval too short", ["--interval", "0"], "--interval must be between"),
        ("no rounds", ["--rounds", "0"], "--rounds must be between"),
        ("bad seed", ["--seed", "x"], "--seed must be a whole number"),
    ],
)
def test_a_bad_command_line_changes_nothing(_case: str, argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _maker_command("--once", *argv)

    assert not User.objects.filter(email=MAKER_EMAIL).exists()
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_markets_option_quotes_only_those_and_halted_markets_are_refused() -> None:
    Market.objects.filter(symbol="ETH-USDT").update(status=MarketStatus.HALTED)
    with pytest.raises(CommandError, match="not a trading market: ETH-USDT"):
        _maker_command("--once", "--markets", "ETH-USDT")

    with loops_running(["BTC-USDT"]):
        _maker_command("--once", "--markets", "btc-usdt")
        wait_settled(["BTC-USDT"])

    assert set(Order.objects.values_list("market__symbol", flat=True)) == {"BTC-USDT"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_no_trading_demo_market_is_refused() -> None:
    with pytest.raises(CommandError, match="run seed_demo"):
        _maker_command("--once")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_without_a_last_price_it_quotes_around_the_book_or_waits() -> None:
    Market.objects.filter(symbol="ETH-USDT").update(last_price=None)
    market = Market.objects.select_related("base", "quote").get(symbol="ETH-USDT")
    report = MakerReport()
    maker = fund_maker(assets=[market.base, market.quote])
    quoter = MarketMaker(market=market, user=maker, seed=1, report=report)

    quoter.quote()  # an empty book: nothing to quote around yet

    assert report.skipped["no_price"] == 1
    assert report.placed == 0
    alice = User.objects.get(email="alice@exchange.localhost")
    with loops_running(["ETH-USDT"]):
        for side, price in (("buy", "2990"), ("sell", "3010")):
            place_order(
                user=alice, market=market, spec=OrderSpec(side=side, price=D(price), quantity=D(1))
            )
        wait_settled(["ETH-USDT"])
        quoter.quote()
        wait_settled(["ETH-USDT"])

    quotes = _open_quotes(market)
    assert len(quotes) == 2 * LEVELS
    assert quoter.anchor_ticks == 300_000  # (2990 + 3010) / 2 in ticks of 0.01
    assert all(D("2980") < (o.price or 0) < D("3020") for o in quotes)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_short_balance_sizes_orders_down_then_skips_them() -> None:
    market = Market.objects.select_related("base", "quote").get(symbol="BTC-USDT")
    user = User.objects.create_user(email="poor-maker@exchange.localhost")
    fund(user, market.quote, "1000")  # 2% of it is 20 USDT: a few minimum orders at most
    report = MakerReport()
    quoter = MarketMaker(market=market, user=user, seed=4, report=report)
    price = D("60000")

    lots = [
        quoter._quantity(side="buy", price=price, available=D("1000"), spread=20) for _ in range(50)
    ]
    assert all(q is not None and q <= D("0.0003") for q in lots)  # 20 USDT / 60000, floored
    assert quoter._quantity(side="buy", price=price, available=D("100"), spread=20) is None
    assert quoter._quantity(side="sell", price=price, available=D("0"), spread=20) is None

    with loops_running(["BTC-USDT"]):
        quoter.quote()  # no BTC: the asks are skipped, the bids sized to what is there
        wait_settled(["BTC-USDT"])

    assert report.skipped["low_balance"] >= LEVELS
    quotes = _open_quotes_of(user, market)
    assert quotes
    assert {o.side for o in quotes} == {"buy"}
    assert Deposit.objects.filter(user=user).count() == 1  # it never tops itself up


def _open_quotes_of(user: User, market: Market) -> list[Order]:
    return list(Order.objects.filter(user=user, market=market, status__in=OPEN_STATUSES))


def test_the_walk_is_bounded_pulled_back_and_integer() -> None:
    rng = random.Random(9)
    mid = anchor = 6_000_000
    seen = []
    for _ in range(2000):
        after = walk_step(mid_ticks=mid, anchor_ticks=anchor, rng=rng)
        assert isinstance(after, int)
        assert abs(after - mid) <= mid * 3 // 10_000 + abs(mid - anchor) // 60 + 1
        mid = after
        seen.append(mid)
    assert max(abs(m - anchor) for m in seen) < anchor // 20  # stays within 5%
    assert walk_step(mid_ticks=1, anchor_ticks=1, rng=rng) >= 1


def test_the_ladder_has_levels_a_side_with_bids_below_asks() -> None:
    quotes = ladder(mid_ticks=10_000, scale_ticks=10_000)
    bids = [t for s, t in quotes if s == "buy"]
    asks = [t for s, t in quotes if s == "sell"]
    assert bids == [9995, 9991, 9987, 9983]
    assert asks == [10005, 10009, 10013, 10017]
    assert all(t >= 1 for _s, t in ladder(mid_ticks=2, scale_ticks=2))


def test_a_small_move_of_the_mid_keeps_the_ladder_on_its_grid() -> None:
    before = ladder(mid_ticks=10_000, scale_ticks=10_000)

    assert ladder(mid_ticks=10_003, scale_ticks=10_000) == before  # under one gap (4 ticks)
    moved = ladder(mid_ticks=10_004, scale_ticks=10_000)
    assert len(set(moved) & set(before)) == 2 * LEVELS - 2  # one level a side replaced


def test_min_lots_meets_min_quantity_and_min_notional() -> None:
    market = Market(
        tick_size=D("10"),
        lot_size=D("1"),
        min_quantity=D("1"),
        min_notional=D("100000"),
    )
    assert min_lots(market, D("100000")) == 1
    assert min_lots(market, D("30000")) == 4  # 3 lots are 90,000 IRT: below the minimum
    market.min_quantity = D("7")
    assert min_lots(market, D("100000")) == 7


def _quoter(symbol: str, *, seed: int = 1) -> tuple[MarketMaker, MakerReport]:
    market = Market.objects.select_related("base", "quote").get(symbol=symbol)
    report = MakerReport()
    maker = fund_maker(assets=[market.base, market.quote])
    return MarketMaker(market=market, user=maker, seed=seed, report=report), report


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_mid_outside_the_band_is_pulled_back_into_it() -> None:
    quoter, report = _quoter("BTC-USDT")
    quoter.mid_ticks = 7_000_000  # 70,000 USDT: above the ±10% band around 60,000

    with loops_running(["BTC-USDT"]):
        quoter.quote()
        wait_settled(["BTC-USDT"])

    assert not report.refused
    assert report.placed == 2 * LEVELS
    assert quoter.mid_ticks is not None
    assert quoter.mid_ticks <= 6_600_000
    for order in _open_quotes(quoter.market):
        _assert_within_rules(order, quoter.market)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_band_narrower_than_the_ladder_keeps_only_the_levels_inside_it() -> None:
    # ±0.05% of 60,000 is ±30 USDT: room for the best bid and ask (5 bps away), no more.
    Market.objects.filter(symbol="BTC-USDT").update(price_band_pct=D("0.05"))
    quoter, report = _quoter("BTC-USDT")

    with loops_running(["BTC-USDT"]):
        quoter.quote()
        wait_settled(["BTC-USDT"])

    assert not report.refused
    quotes = _open_quotes(quoter.market)
    assert sorted((o.side, o.price) for o in quotes) == [("buy", D("59970")), ("sell", D("60030"))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_cancel_only_market_gets_its_quotes_cancelled_and_no_new_ones() -> None:
    quoter, report = _quoter("ETH-USDT", seed=3)
    with loops_running(["ETH-USDT"]):
        quoter.quote()
        wait_settled(["ETH-USDT"])
        Market.objects.filter(symbol="ETH-USDT").update(status=MarketStatus.CANCEL_ONLY)
        assert quoter.mid_ticks is not None
        quoter.mid_ticks += 1000  # 10 USDT: every quote is off the new ladder
        quoter.quote()
        wait_settled(["ETH-USDT"])

    assert report.cancelled == 2 * LEVELS
    assert report.refused == {"market_cancel_only": 2 * LEVELS}
    assert "refused {'market_cancel_only': 8}" in report.summary()
    assert not _open_quotes(quoter.market)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_quote_that_closed_before_its_cancel_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quoter, report = _quoter("ETH-USDT", seed=3)
    with loops_running(["ETH-USDT"]):
        quoter.quote()
        wait_settled(["ETH-USDT"])

        def filled_meanwhile(**kwargs: object) -> Order:
            # The race: the quote filled between the maker listing it and cancelling it.
            raise OrderNotOpen("The order is already filled.", field="order_id")

        monkeypatch.setattr("trading.demo_maker.cancel_order", filled_meanwhile)
        assert quoter.mid_ticks is not None
        quoter.mid_ticks += 1000
        quoter.quote()
        wait_settled(["ETH-USDT"])

    assert report.cancelled == 0
    assert report.refused == {"order_not_open": 2 * LEVELS}
    assert report.placed == 4 * LEVELS  # the new ladder was placed all the same
    assert quoter.cancelling == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_without_funds_it_takes_nothing() -> None:
    market = Market.objects.select_related("base", "quote").get(symbol="USDT-IRT")
    user = User.objects.create_user(email="empty-maker@exchange.localhost")
    report = MakerReport()
    quoter = MarketMaker(market=market, user=user, seed=1, report=report)

    assert quoter.take() is False
    assert quoter.take() is False

    assert report.skipped == {"low_balance": 2}
    assert report.taken == 0
    assert "skipped {'low_balance': 2}" in report.summary()
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_with_no_price_at_all_it_takes_nothing() -> None:
    Market.objects.filter(symbol="ETH-USDT").update(last_price=None)
    quoter, report = _quoter("ETH-USDT")

    assert quoter.take() is False

    assert report.placed == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_by_default_only_the_demo_markets_are_quoted() -> None:
    MarketFactory.create(
        symbol="ETH-BTC",
        base=Asset.objects.get(code="ETH"),
        quote=Asset.objects.get(code="BTC"),
        last_price=D("0.05"),
    )
    with loops_running(SYMBOLS):
        text = _maker_command("--once")
        wait_settled(SYMBOLS)

    assert "quoting BTC-USDT, ETH-USDT, USDT-IRT" in text
    assert not Order.objects.filter(market__symbol="ETH-BTC").exists()


def test_signals_are_left_alone_outside_the_main_thread() -> None:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(_on_signals(threading.Event())))
    thread.start()
    thread.join()

    assert found == [{}]
