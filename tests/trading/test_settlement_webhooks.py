"""Settlement records the partners' `order.update` and `trade` webhooks in its own
transaction: one delivery per event and endpoint, none for users without an endpoint, and
nothing more when a batch is delivered to settle_batch again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Asset, User, WebhookDelivery
from accounts.services.webhooks import create_webhook_endpoint
from accounts.webhooks.record import SettlementEvents, record_settlement_events
from markets.models import Market
from tests.conftest import fund
from tests.trading.test_settlement import _engine_entries
from trading.models import Order, SettlementCursor, Trade
from trading.services.orders import place_order
from trading.services.settlement import settle_batch
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal


@pytest.fixture
def hooks(settings, alice: User, bob: User) -> dict[str, int]:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    return {
        "alice": create_webhook_endpoint(
            user=alice, url="http://127.0.0.1:9/a", events=["order.update", "trade"]
        ).endpoint.pk,
        "alice_deposits": create_webhook_endpoint(
            user=alice, url="http://127.0.0.1:9/d", events=["deposit"]
        ).endpoint.pk,
        "bob": create_webhook_endpoint(
            user=bob, url="http://127.0.0.1:9/b", events=["trade"]
        ).endpoint.pk,
    }


def _events(endpoint_id: int) -> dict[str, dict]:
    rows = WebhookDelivery.objects.filter(endpoint_id=endpoint_id).exclude(event_type="deposit")
    return {row.event_id: row.payload for row in rows}


def test_a_settled_trade_and_order_update_are_recorded_once_per_endpoint(
    alice: User, bob: User, mallory: User, assets: dict[str, Asset], btc_usdt: Market, hooks
) -> None:
    fund(alice, assets["BTC"], "1")
    fund(bob, assets["USDT"], "100000")
    fund(mallory, assets["USDT"], "100000")
    sell = place_order(
        user=alice,
        market=btc_usdt,
        spec=OrderSpec(side="sell", price=D("50000"), quantity=D("0.01"), client_order_id="s1"),
    )
    buy = place_order(
        user=bob,
        market=btc_usdt,
        spec=OrderSpec(side="buy", price=D("50000"), quantity=D("0.01"), client_order_id="b1"),
    )
    place_order(  # mallory has no endpoint: her order is recorded for nobody
        user=mallory,
        market=btc_usdt,
        spec=OrderSpec(side="buy", price=D("49000"), quantity=D("0.01"), client_order_id="m1"),
    )
    entries = _engine_entries(btc_usdt)
    SettlementCursor.objects.get_or_create(market=btc_usdt)

    first = settle_batch(market_id=btc_usdt.pk, entries=entries[:1])  # alice's sell rests
    seq_1 = first.last_seq
    second = settle_batch(market_id=btc_usdt.pk, entries=entries[1:])  # bob's buy fills it
    seq_2 = second.last_seq
    again = settle_batch(market_id=btc_usdt.pk, entries=entries)  # redelivered: all dropped

    assert again.applied == 0
    trade = Trade.objects.get(market=btc_usdt)
    sell.refresh_from_db()
    market, t = btc_usdt.pk, trade.seq
    alice_events = _events(hooks["alice"])
    assert sorted(alice_events) == sorted(
        [f"order:{sell.pk}:{seq_1}", f"order:{sell.pk}:{seq_2}", f"trade:{market}:{t}:sell"]
    )
    updated = alice_events[f"order:{sell.pk}:{seq_2}"].pop("updated_at")
    assert isinstance(updated, int)
    assert alice_events[f"order:{sell.pk}:{seq_2}"] == {
        "id": sell.pk,
        "client_order_id": "s1",
        "symbol": "BTC-USDT",
        "side": "sell",
        "type": "limit",
        "status": "filled",
        "price": "50000",
        "quantity": "0.01",
        "filled_quantity": "0.01",
        "filled_quote": "500",
        "fee_paid": "0.5",
    }
    assert alice_events[f"order:{sell.pk}:{seq_1}"]["status"] == "new"
    assert alice_events[f"order:{sell.pk}:{seq_1}"]["filled_quantity"] == "0"
    alice_trade = alice_events[f"trade:{market}:{t}:sell"]
    assert isinstance(alice_trade.pop("time"), int)
    assert alice_trade == {
        "id": trade.pk,
        "seq": t,
        "symbol": "BTC-USDT",
        "order_id": sell.pk,
        "side": "sell",
        "is_maker": True,
        "price": "50000",
        "quantity": "0.01",
        "quote_quantity": "500",
        "fee": "0.5",
        "fee_asset": "USDT",
    }
    bob_events = _events(hooks["bob"])
    assert list(bob_events) == [f"trade:{market}:{t}:buy"]  # trades only: no order.update
    bob_trade = bob_events[f"trade:{market}:{t}:buy"]
    assert (bob_trade["order_id"], bob_trade["is_maker"], bob_trade["fee"]) == (buy.pk, False, "1")
    assert (
        not WebhookDelivery.objects.filter(endpoint_id=hooks["alice_deposits"])
        .exclude(event_type="deposit")
        .exists()
    )
    assert WebhookDelivery.objects.exclude(event_type="deposit").count() == 4
    assert Order.objects.get(client_order_id="m1").accepted_seq is not None


def test_recording_the_same_columns_twice_adds_nothing(
    alice: User, assets: dict[str, Asset], btc_usdt: Market, hooks
) -> None:
    fund(alice, assets["BTC"], "1")
    order = place_order(
        user=alice,
        market=btc_usdt,
        spec=OrderSpec(side="sell", price=D("50000"), quantity=D("0.01"), client_order_id="s"),
    )
    events = SettlementEvents(order_id=[order.pk], order_user_id=[alice.pk])

    for _ in range(2):
        record_settlement_events(
            market_id=btc_usdt.pk,
            symbol="BTC-USDT",
            fee_asset_id=assets["USDT"].pk,
            batch_seq=7,
            events=events,
        )

    assert list(
        WebhookDelivery.objects.filter(endpoint_id=hooks["alice"]).values_list(
            "event_id", flat=True
        )
    ) == [f"order:{order.pk}:7"]


def test_an_empty_batch_runs_no_statement(django_assert_num_queries, btc_usdt: Market) -> None:
    with django_assert_num_queries(0):
        record_settlement_events(
            market_id=btc_usdt.pk,
            symbol="BTC-USDT",
            fee_asset_id=btc_usdt.quote_id,
            batch_seq=1,
            events=SettlementEvents(),
        )
