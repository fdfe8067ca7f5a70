"""Amend-down: trading.services.orders.reduce_order and `POST /api/v1/orders/<id>/reduce`.

The engine lowers the order's remaining quantity (ReduceOrder, priority kept); settlement
applies its Reduced: the quantity goes down and the hold the removed part needed is
released. Every refusal writes nothing (no outbox row, no balance move)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market, MarketStatus
from tests.api.conftest import make_key
from tests.api.test_v1_support import JsonSigned, limit_order
from tests.conftest import assert_ledger_clean, balance_of, fund
from tests.trading import conftest as trading_fixtures
from tests.trading.conftest import snapshot
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.errors import InvalidOrder, MarketNotTrading, OrderNotFound, OrderNotOpen
from trading.models import Order, OrderStatus, OutboxEntry
from trading.services.orders import place_order, reduce_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


def _buy(user: User, market: Market, quantity: str = "0.1") -> Order:
    spec = OrderSpec(side="buy", price=D("50000"), quantity=D(quantity))
    return place_order(user=user, market=market, spec=spec)


def test_reduce_lowers_the_quantity_and_releases_the_hold(alice, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "20000")
    with loops_running(["BTC-USDT"]):
        order = _buy(alice, btc_usdt)
        wait_settled(["BTC-USDT"])
        assert balance_of(alice, assets["USDT"]) == (D("14990"), D("5010"))
        reduce_order(user=alice, order_id=order.pk, remaining_quantity="0.04")
        wait_settled(["BTC-USDT"])
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.quantity) == (OrderStatus.NEW, D("0.04"))
    # 0.04 x 50,000 x (1 + 0.2%) stays locked; the rest is back.
    assert stored.hold_remaining == D("2004")
    assert balance_of(alice, assets["USDT"]) == (D("17996"), D("2004"))
    assert_ledger_clean()


def test_a_reduction_the_engine_refuses_changes_nothing(alice, bob, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "20000")
    fund(bob, assets["BTC"], "1")
    with loops_running(["BTC-USDT"]):
        order = _buy(alice, btc_usdt)
        wait_settled(["BTC-USDT"])
        # A fill the stored order has not seen yet: 0.08 of 0.1 is taken first.
        place_order(
            user=bob,
            market=btc_usdt,
            spec=OrderSpec(side="sell", price=D("50000"), quantity=D("0.08")),
        )
        reduce_order(user=alice, order_id=order.pk, remaining_quantity="0.05")
        wait_settled(["BTC-USDT"])
    stored = Order.objects.get(pk=order.pk)
    assert (stored.quantity, stored.filled_quantity) == (D("0.1"), D("0.08"))  # not reduced
    assert_ledger_clean()


@pytest.mark.parametrize(
    ("_case", "remaining", "error", "code"),
    [
        ("increase", "0.2", InvalidOrder, "quantity_not_reduced"),
        ("unchanged", "0.1", InvalidOrder, "quantity_not_reduced"),
        ("off lot", "0.000011", InvalidOrder, "quantity_off_lot"),
        ("too precise", "0.000000001", Exception, "amount_too_precise"),
        ("zero", "0", Exception, "amount_not_positive"),
        ("not a number", "abc", Exception, "amount_invalid"),
        ("exponent", "1e-2", Exception, "amount_invalid"),
    ],
)
def test_bad_reductions_write_nothing(alice, assets, btc_usdt, _case, remaining, error, code):
    fund(alice, assets["USDT"], "20000")
    order = _buy(alice, btc_usdt)
    before = snapshot()
    with pytest.raises(error) as raised:
        reduce_order(user=alice, order_id=order.pk, remaining_quantity=remaining)
    assert getattr(raised.value, "code", None) == code
    assert snapshot() == before


def test_other_users_terminal_and_halted(alice, mallory, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "20000")
    order = _buy(alice, btc_usdt)
    outbox = OutboxEntry.objects.count()
    with pytest.raises(OrderNotFound):
        reduce_order(user=mallory, order_id=order.pk, remaining_quantity="0.01")
    Market.objects.filter(pk=btc_usdt.pk).update(status=MarketStatus.HALTED)
    with pytest.raises(MarketNotTrading):
        reduce_order(user=alice, order_id=order.pk, remaining_quantity="0.01")
    Market.objects.filter(pk=btc_usdt.pk).update(status=MarketStatus.CANCEL_ONLY)
    reduce_order(user=alice, order_id=order.pk, remaining_quantity="0.01")  # lowers exposure
    assert OutboxEntry.objects.count() == outbox + 1
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELED)
    with pytest.raises(OrderNotOpen):
        reduce_order(user=alice, order_id=order.pk, remaining_quantity="0.01")


def test_the_api_reduces(live_api: str, alice: User, assets: dict[str, Asset], btc_usdt) -> None:
    fund(alice, assets["USDT"], "20000")
    client = JsonSigned(live_api, *make_key(alice))
    order = client.request("POST", "/api/v1/orders", body=limit_order()).body
    with loops_running(["BTC-USDT"]):
        wait_settled(["BTC-USDT"])
        answer = client.request(
            "POST", f"/api/v1/orders/{order['id']}/reduce", body={"remaining_quantity": "0.05"}
        )
        assert answer.status == 202, answer.body
        wait_settled(["BTC-USDT"])
    got = client.request("GET", f"/api/v1/orders/{order['id']}").body
    assert (got["quantity"], got["remaining_quantity"]) == ("0.05000000", "0.05000000")
    before = snapshot()
    for sent, code in [
        ({"remaining_quantity": "0.06"}, "quantity_not_reduced"),
        ({"remaining_quantity": 0.01}, "invalid"),
        ({}, "required"),
        ({"quantity": "0.01"}, "field_unknown"),
    ]:
        bad = client.request("POST", f"/api/v1/orders/{order['id']}/reduce", body=sent)
        assert (bad.status, bad.code) == (400, code), (sent, bad.body)
    assert snapshot() == before
    assert_ledger_clean()
