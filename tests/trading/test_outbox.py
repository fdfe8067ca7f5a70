"""The outbox: written with the order, XADDed after commit, re-sent by the sweeper once.

These tests commit for real (transaction=True) so on_commit runs, and use the exchange's
own Redis database (FLUSHDB of REDIS_URL's db before and after, never FLUSHALL).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.errors import InsufficientFunds
from tests.conftest import fund
from trading.engine.commands import CancelAll
from trading.models import OutboxEntry
from trading.redis import reset_redis_clients
from trading.services.orders import OrderSpec, cancel_order, place_order
from trading.services.outbox import sweep_outbox, write_outbox
from trading.streams import input_stream

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
DEAD_REDIS = "redis://127.0.0.1:1/7"  # nothing listens on port 1: connection refused at once


def buy(quantity: str = "0.001", **kw: object) -> OrderSpec:
    return OrderSpec(side="buy", price=D("50000"), quantity=D(quantity), **kw)  # type: ignore[arg-type]


def stream(redis_db, market) -> list[dict]:
    return [
        {"id": sid.decode(), **json.loads(fields[b"c"])}
        for sid, fields in redis_db.xrange(input_stream(market.symbol))
    ]


@pytest.fixture
def trader(alice, assets):
    fund(alice, assets["USDT"], "1000")
    return alice


def test_command_reaches_the_stream_after_commit_and_row_is_marked(trader, btc_usdt, redis_db):
    order = place_order(user=trader, market=btc_usdt, spec=buy())

    entry = OutboxEntry.objects.get()
    [message] = stream(redis_db, btc_usdt)
    assert message["cid"] == entry.pk
    assert (message["type"], message["order_id"], message["account_id"]) == (
        "place_order",
        order.pk,
        trader.pk,
    )
    assert entry.published_at is not None
    assert entry.stream_id == message["id"]


def test_nothing_is_sent_before_commit_or_after_rollback(trader, btc_usdt, redis_db):
    def write_then_fail() -> None:
        with transaction.atomic():
            write_outbox(market=btc_usdt, command=CancelAll(account_id=trader.pk))
            assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 0
            raise RuntimeError("rolled back on purpose")

    with pytest.raises(RuntimeError, match="rolled back on purpose"):
        write_then_fail()

    assert OutboxEntry.objects.count() == 0
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 0


def test_rejected_order_writes_no_outbox_row_and_sends_nothing(trader, btc_usdt, redis_db):
    with pytest.raises(InsufficientFunds):
        place_order(user=trader, market=btc_usdt, spec=buy(quantity="1"))

    assert OutboxEntry.objects.count() == 0
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 0


def test_order_is_accepted_while_redis_is_down_and_swept_exactly_once(
    trader, btc_usdt, redis_db, settings
):
    settings.REDIS_URL = DEAD_REDIS
    reset_redis_clients()
    order = place_order(user=trader, market=btc_usdt, spec=buy())
    entry = OutboxEntry.objects.get()
    assert entry.published_at is None
    settings.REDIS_URL = _url(redis_db)
    reset_redis_clients()

    assert sweep_outbox() == 0  # too young: its own publish may still be on the way
    OutboxEntry.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    assert sweep_outbox() == 1
    assert sweep_outbox() == 0

    [message] = stream(redis_db, btc_usdt)
    assert (message["order_id"], message["cid"]) == (order.pk, entry.pk)
    entry.refresh_from_db()
    assert entry.published_at is not None
    assert entry.stream_id == message["id"]


def _url(client) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def test_sweeper_sends_rows_in_acceptance_order(trader, btc_usdt, redis_db, settings):
    good_url = _url(redis_db)
    settings.REDIS_URL = DEAD_REDIS
    reset_redis_clients()
    orders = [place_order(user=trader, market=btc_usdt, spec=buy()) for _ in range(3)]
    settings.REDIS_URL = good_url
    reset_redis_clients()
    OutboxEntry.objects.update(created_at=timezone.now() - timedelta(seconds=30))

    assert sweep_outbox() == 3

    assert [m["order_id"] for m in stream(redis_db, btc_usdt)] == [o.pk for o in orders]


def test_cancel_sends_its_orders_unpublished_place_first(trader, btc_usdt, redis_db, settings):
    good_url = _url(redis_db)
    settings.REDIS_URL = DEAD_REDIS
    reset_redis_clients()
    order = place_order(user=trader, market=btc_usdt, spec=buy())
    settings.REDIS_URL = good_url
    reset_redis_clients()

    cancel_order(user=trader, order_id=order.pk)

    assert [m["type"] for m in stream(redis_db, btc_usdt)] == ["place_order", "cancel_order"]
    assert OutboxEntry.objects.filter(published_at__isnull=True).count() == 0
    assert sweep_outbox(min_age=timedelta(0)) == 0
