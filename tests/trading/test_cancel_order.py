"""cancel_order and cancel_all: a command through the outbox, never a direct state change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import AuditLog
from accounts.services.ledger import release_hold
from markets.models import MarketStatus
from tests.conftest import balance_of, fund
from tests.trading.conftest import snapshot
from trading.errors import InvalidOrder, MarketNotTrading, OrderNotFound, OrderNotOpen
from trading.models import Order, OrderStatus, OutboxEntry
from trading.services.orders import OrderSpec, cancel_all, cancel_order, place_order

pytestmark = pytest.mark.django_db
D = Decimal


def buy(**kw: object) -> OrderSpec:
    return OrderSpec(side="buy", price=D("50000"), quantity=D("0.001"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def trader(alice, assets):
    fund(alice, assets["USDT"], "10000")
    return alice


@pytest.fixture
def order(trader, btc_usdt):
    return place_order(user=trader, market=btc_usdt, spec=buy(client_order_id="mine-1"))


def test_cancel_writes_a_cancel_command_and_changes_nothing_else(trader, order, assets):
    balances = balance_of(trader, assets["USDT"])

    returned = cancel_order(user=trader, order_id=order.pk)

    assert returned.pk == order.pk
    order.refresh_from_db()
    assert order.status == OrderStatus.NEW  # the engine's Cancelled event decides
    assert balance_of(trader, assets["USDT"]) == balances  # settlement releases the hold
    cancel = OutboxEntry.objects.order_by("pk").last()
    assert cancel.payload == {
        "type": "cancel_order",
        "order_id": order.pk,
        "account_id": trader.pk,
    }


def test_cancel_by_client_order_id(trader, order):
    cancel_order(user=trader, client_order_id="mine-1")

    assert OutboxEntry.objects.filter(payload__type="cancel_order").count() == 1


@pytest.mark.parametrize(
    ("_case", "kwargs"),
    [
        ("unknown id", {"order_id": 999_999_999}),
        ("garbage id", {"order_id": "1 OR 1=1"}),
        ("huge id", {"order_id": "9" * 40}),
        ("negative id", {"order_id": "-1"}),
        ("unknown client id", {"client_order_id": "nope"}),
    ],
)
def test_unknown_orders_are_not_found(trader, order, _case, kwargs):
    before = snapshot()

    with pytest.raises(OrderNotFound) as caught:
        cancel_order(user=trader, **kwargs)

    assert (caught.value.code, caught.value.status) == ("order_not_found", 404)
    assert snapshot() == before


def test_another_users_order_is_not_found_and_untouched(mallory, order):
    before = snapshot()

    with pytest.raises(OrderNotFound):
        cancel_order(user=mallory, order_id=order.pk)
    with pytest.raises(OrderNotFound):
        cancel_order(user=mallory, client_order_id="mine-1")
    assert cancel_all(user=mallory) == 0

    assert snapshot() == before


def test_exactly_one_identifier_is_required(trader, order):
    with pytest.raises(InvalidOrder) as caught:
        cancel_order(user=trader)
    assert caught.value.code == "order_id_required"
    with pytest.raises(InvalidOrder):
        cancel_order(user=trader, order_id=order.pk, client_order_id="mine-1")


def test_terminal_order_cannot_be_cancelled(trader, order, assets):
    # What settlement does when the engine cancels it: release and mark terminal.
    with transaction.atomic():
        release_hold(
            user=trader, asset=assets["USDT"], amount=order.hold_remaining, ref=f"order:{order.pk}"
        )
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELED, hold_remaining=0)
    before = snapshot()

    with pytest.raises(OrderNotOpen) as caught:
        cancel_order(user=trader, order_id=order.pk)

    assert (caught.value.code, caught.value.status) == ("order_not_open", 409)
    assert snapshot() == before


def test_halted_market_refuses_cancels(trader, order, btc_usdt):
    btc_usdt.status = MarketStatus.HALTED
    btc_usdt.save()
    before = snapshot()

    with pytest.raises(MarketNotTrading) as caught:
        cancel_order(user=trader, order_id=order.pk)
    with pytest.raises(MarketNotTrading):
        cancel_all(user=trader, market=btc_usdt)

    assert caught.value.code == "market_halted"
    assert snapshot() == before


def test_cancel_only_market_accepts_cancels(trader, order, btc_usdt):
    btc_usdt.status = MarketStatus.CANCEL_ONLY
    btc_usdt.save()

    cancel_order(user=trader, order_id=order.pk)

    assert OutboxEntry.objects.filter(payload__type="cancel_order").count() == 1


def test_frozen_user_may_still_cancel(trader, order):
    trader.is_frozen = True
    trader.save()

    cancel_order(user=trader, order_id=order.pk)

    assert OutboxEntry.objects.filter(payload__type="cancel_order").count() == 1


def test_cancel_all_sends_one_command_per_market_with_open_orders(
    trader, order, btc_usdt, eth_usdt, usdt_irt
):
    place_order(user=trader, market=btc_usdt, spec=buy())
    place_order(
        user=trader,
        market=eth_usdt,
        spec=OrderSpec(side="buy", price=D("3000"), quantity=D("0.01")),
    )

    assert cancel_all(user=trader) == 3

    commands = OutboxEntry.objects.filter(payload__type="cancel_all").order_by("market_id")
    assert [(c.market_id, c.payload["account_id"]) for c in commands] == [
        (btc_usdt.pk, trader.pk),
        (eth_usdt.pk, trader.pk),
    ]


def test_cancel_all_skips_halted_markets_when_none_is_named(trader, order, btc_usdt, eth_usdt):
    place_order(
        user=trader,
        market=eth_usdt,
        spec=OrderSpec(side="buy", price=D("3000"), quantity=D("0.01")),
    )
    btc_usdt.status = MarketStatus.HALTED
    btc_usdt.save()

    assert cancel_all(user=trader) == 1

    assert list(
        OutboxEntry.objects.filter(payload__type="cancel_all").values_list("market_id", flat=True)
    ) == [eth_usdt.pk]


def test_staff_cancel_is_audited(trader, order, staff):
    cancel_order(user=trader, order_id=order.pk, actor=staff)

    log = AuditLog.objects.get(action="order.cancel")
    assert (log.actor_id, log.target_id) == (staff.pk, str(order.pk))
