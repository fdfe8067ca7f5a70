"""Order services take an ActorContext: who acts for the user, and from which IP (audited)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import RequestFactory

from accounts.http import actor_context
from accounts.models import AuditLog
from accounts.services.audit import ActorContext
from tests.conftest import fund
from trading.models import Order
from trading.services.orders import OrderSpec, cancel_all, cancel_order, place_order

pytestmark = pytest.mark.django_db
D = Decimal
IP = "203.0.113.7"


def buy(**kw: object) -> OrderSpec:
    return OrderSpec(side="buy", price=D("50000"), quantity=D("0.001"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def trader(alice, assets):
    fund(alice, assets["USDT"], "10000")
    return alice


@pytest.fixture
def order(trader, btc_usdt):
    return place_order(user=trader, market=btc_usdt, spec=buy(client_order_id="mine-1"))


def staff_context(staff) -> ActorContext:
    request = RequestFactory().post("/admin/", REMOTE_ADDR=IP)
    request.user = staff
    return actor_context(request)


def test_a_cancel_with_a_context_writes_the_ip_in_the_audit_row(trader, order, staff):
    cancel_order(user=trader, order_id=order.pk, context=staff_context(staff))

    log = AuditLog.objects.get(action="order.cancel")
    assert (log.actor_id, log.target_id, log.ip_address) == (staff.pk, str(order.pk), IP)


def test_actor_keeps_working_and_takes_the_contexts_ip(trader, order, staff):
    cancel_order(user=trader, order_id=order.pk, actor=staff, context=ActorContext(ip_address=IP))

    log = AuditLog.objects.get(action="order.cancel")
    assert (log.actor_id, log.ip_address) == (staff.pk, IP)


def test_the_users_own_cancel_is_not_audited(trader, order):
    cancel_order(user=trader, order_id=order.pk, context=ActorContext(user=trader, ip_address=IP))

    assert not AuditLog.objects.filter(action="order.cancel").exists()


def test_cancel_all_with_a_context_writes_the_ip(trader, order, staff):
    assert cancel_all(user=trader, context=staff_context(staff)) == 1

    log = AuditLog.objects.get(action="order.cancel_all")
    assert (log.actor_id, log.target_id, log.ip_address) == (staff.pk, str(trader.pk), IP)
    assert log.details == {"markets": ["BTC-USDT"]}


def test_an_order_placed_for_the_user_is_audited_with_the_ip(trader, btc_usdt, staff):
    placed = place_order(user=trader, market=btc_usdt, spec=buy(), context=staff_context(staff))

    log = AuditLog.objects.get(action="order.place")
    assert (log.actor_id, log.target_id, log.ip_address) == (staff.pk, str(placed.pk), IP)


def test_the_users_own_order_is_not_audited(trader, btc_usdt):
    context = ActorContext(user=trader, ip_address=IP)

    place_order(user=trader, market=btc_usdt, spec=buy(), context=context)

    assert Order.objects.count() == 1
    assert not AuditLog.objects.exists()


def test_a_refused_order_leaves_no_audit_row(alice, btc_usdt, staff):
    with pytest.raises(Exception, match="Insufficient"):
        place_order(user=alice, market=btc_usdt, spec=buy(), context=staff_context(staff))

    assert not AuditLog.objects.exists()
    assert not Order.objects.exists()
