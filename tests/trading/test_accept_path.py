"""The one accept path: no batching means a batch of one; markets owns the last price SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.errors import InsufficientFunds
from accounts.models import EntryKind, JournalEntry
from markets.models import Market
from markets.services import set_last_price
from tests.conftest import balance_of, fund
from trading.errors import DuplicateClientOrderId
from trading.models import Order, OutboxEntry
from trading.services import accept_write
from trading.services.accept_batch import get_batcher
from trading.services.orders import OrderSpec, place_order
from trading.streams import input_stream

D = Decimal
HOLD = D("50.1")  # 0.001 BTC at 50,000 plus the 0.2% taker fee


def buy(price: str = "50000", **kw: object) -> OrderSpec:
    return OrderSpec(side="buy", price=D(price), quantity=D("0.001"), **kw)  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_without_batching_each_order_goes_through_apply_batch_alone(
    alice, btc_usdt, assets, redis_db, settings, monkeypatch
):
    fund(alice, assets["USDT"], HOLD * 2)
    settings.ACCEPT_BATCHING = False
    sizes: list[int] = []
    original = accept_write.apply_batch

    def spy(batch):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return original(batch)

    monkeypatch.setattr("trading.services.accept_batch.apply_batch", spy)
    batches = get_batcher().stats.batches

    first = place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a"))
    repeat = place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a"))
    with pytest.raises(DuplicateClientOrderId):
        place_order(user=alice, market=btc_usdt, spec=buy("49000", client_order_id="a"))
    second = place_order(user=alice, market=btc_usdt, spec=buy())
    with pytest.raises(InsufficientFunds):
        place_order(user=alice, market=btc_usdt, spec=buy())

    assert sizes == [1, 1, 1, 1, 1]
    assert get_batcher().stats.batches == batches  # the batcher's thread was not used
    assert repeat.pk == first.pk
    assert list(Order.objects.order_by("pk").values_list("pk", flat=True)) == [first.pk, second.pk]
    assert JournalEntry.objects.filter(kind=EntryKind.ORDER_HOLD).count() == 2
    assert balance_of(alice, assets["USDT"]) == (D("0"), HOLD * 2)
    assert OutboxEntry.objects.filter(published_at__isnull=False).count() == 2
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 2


@pytest.mark.django_db
def test_set_last_price_sets_it_and_none_leaves_it(btc_usdt):
    updated_at = Market.objects.get(pk=btc_usdt.pk).updated_at
    with transaction.atomic():
        set_last_price(market_id=btc_usdt.pk, price=D("51234.5"))
        set_last_price(market_id=btc_usdt.pk, price=None)

    market = Market.objects.get(pk=btc_usdt.pk)
    assert market.last_price == D("51234.5")
    assert market.updated_at == updated_at  # the rules cache key is left alone
