"""Fee tiers (issue 11): an order's rates are min(market, tier), fixed at accept; the hold
is computed with them and settlement charges each side its own order's rates."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest

from accounts.models import Asset, Balance, User
from markets.fees import set_user_tiers
from markets.models import FeeTier, Market
from tests.conftest import fund
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Order, OrderStatus, Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
CENT = D("0.000001")  # USDT places


def _tiers() -> tuple[FeeTier, FeeTier]:
    vip = FeeTier.objects.create(
        name="VIP", min_volume_30d=D("1000"), maker_fee=D("0.0002"), taker_fee=D("0.003")
    )
    pro = FeeTier.objects.create(
        name="Pro", min_volume_30d=D("100"), maker_fee=D("0.0005"), taker_fee=D("0.0015")
    )
    return vip, pro


def _buy(user: User, market: Market, coid: str, price: str = "50000", qty: str = "0.1") -> Order:
    spec = OrderSpec(side="buy", price=D(price), quantity=D(qty), client_order_id=coid)
    return place_order(user=user, market=market, spec=spec)


def _sell(user: User, market: Market, coid: str, price: str = "50000", qty: str = "0.1") -> Order:
    spec = OrderSpec(side="sell", price=D(price), quantity=D(qty), client_order_id=coid)
    return place_order(user=user, market=market, spec=spec)


def test_order_rates_are_the_lower_of_market_and_tier(
    alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market
) -> None:
    vip, _pro = _tiers()
    set_user_tiers(volumes={alice.pk: D("5000"), bob.pk: D("10")})
    fund(alice, assets["USDT"], "20000")
    fund(bob, assets["USDT"], "10000")
    a, b = _buy(alice, btc_usdt, "a1"), _buy(bob, btc_usdt, "b1")
    # market 0.001 / 0.002; VIP 0.0002 / 0.003 -> maker from the tier, taker the market's
    assert (a.maker_fee_rate, a.taker_fee_rate) == (D("0.0002"), D("0.002"))
    assert (b.maker_fee_rate, b.taker_fee_rate) == (D("0.001"), D("0.002"))  # no tier reached
    stored = Order.objects.get(pk=a.pk)
    assert (stored.maker_fee_rate, stored.taker_fee_rate) == (D("0.0002"), D("0.002"))
    assert stored.hold_amount == D("5010.00")  # 5000 x (1 + max(0.0002, 0.002))
    vip.taker_fee = D("0.0001")
    vip.save()
    cheap = _buy(alice, btc_usdt, "a2")
    assert cheap.hold_amount == D("5001.00")  # 5000 x (1 + 0.0002)
    assert Order.objects.get(pk=a.pk).hold_amount == D("5010.00")  # accepted: unchanged


def _fee(notional: Decimal, rate: Decimal) -> Decimal:
    return (notional * rate).quantize(CENT, rounding=ROUND_CEILING)


def test_settlement_charges_each_side_its_own_orders_rates(
    alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market
) -> None:
    vip, pro = _tiers()
    set_user_tiers(volumes={alice.pk: D("5000"), bob.pk: D("500")})  # alice VIP, bob Pro
    fund(alice, assets["USDT"], "20000")
    fund(bob, assets["BTC"], "1")
    maker = _buy(alice, btc_usdt, "m1")  # rests: alice's maker rate 0.0002
    # The tier changes after accept: the accepted order keeps its rates.
    vip.maker_fee = D("0")
    vip.save()
    pro.taker_fee = D("0")
    pro.save()
    with loops_running([btc_usdt.symbol]):
        wait_settled([btc_usdt.symbol])
        taker = _sell(bob, btc_usdt, "t1", price="49000")  # accepted at Pro's new taker: 0
        wait_settled([btc_usdt.symbol])
    trade = Trade.objects.get(market=btc_usdt)
    notional = D("5000")
    assert trade.maker_order_id == maker.pk
    assert trade.taker_order_id == taker.pk
    assert trade.maker_fee == _fee(notional, D("0.0002"))  # the rate alice's order was given
    assert trade.taker_fee == D("0")  # bob's order was accepted after Pro's taker went to 0
    buy = Order.objects.get(pk=maker.pk)
    assert buy.status == OrderStatus.FILLED
    assert buy.hold_remaining == 0
    # released + cost + fee == hold
    usdt = Balance.objects.get(user=alice, asset=assets["USDT"])
    assert usdt.locked == 0
    assert D("20000") - usdt.available == notional + trade.maker_fee
    assert buy.fee_paid == trade.maker_fee


def test_mixed_tiers_in_one_batch_pay_their_own_rates(
    alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market
) -> None:
    _tiers()
    set_user_tiers(volumes={alice.pk: D("5000")})  # alice VIP; bob none (market's)
    fund(alice, assets["USDT"], "20000")
    fund(bob, assets["USDT"], "20000")
    fund(alice, assets["BTC"], "1")
    fund(bob, assets["BTC"], "1")
    a_buy = _buy(alice, btc_usdt, "ab")
    b_buy = _buy(bob, btc_usdt, "bb")
    a_sell = _sell(alice, btc_usdt, "as", price="51000")
    b_sell = _sell(bob, btc_usdt, "bs", price="51000")
    with loops_running([btc_usdt.symbol]):
        wait_settled([btc_usdt.symbol])
        # one taker each, both crossing the other's maker
        _sell(alice, btc_usdt, "at", price="50000")
        _buy(bob, btc_usdt, "bt", price="51000")
        wait_settled([btc_usdt.symbol])
    # Every trade against the rates stored on its own two orders (whichever matched).
    orders = {o.pk: o for o in Order.objects.filter(market=btc_usdt)}
    assert Trade.objects.filter(market=btc_usdt).count() == 2
    for trade in Trade.objects.filter(market=btc_usdt):
        notional = trade.price * trade.quantity
        maker, taker = orders[trade.maker_order_id], orders[trade.taker_order_id]
        assert trade.maker_fee == _fee(notional, maker.maker_fee_rate)
        assert trade.taker_fee == _fee(notional, taker.taker_fee_rate)
    assert orders[a_buy.pk].maker_fee_rate == D("0.0002")
    assert orders[b_buy.pk].maker_fee_rate == D("0.001")
    assert orders[a_sell.pk].maker_fee_rate == D("0.0002")
    assert orders[b_sell.pk].maker_fee_rate == D("0.001")
