"""Concurrent place_order (T08): threads on their own connections, released by a barrier.

The balance covers exactly k orders; whatever the interleaving, exactly k are accepted,
nothing is overdrawn, and the sum of the order holds equals what is locked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from accounts.errors import InsufficientFunds
from exchange.errors import DomainError
from tests.conftest import balance_of, fund
from trading.models import Order, OutboxEntry
from trading.services.orders import OrderSpec, place_order
from trading.streams import input_stream

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
THREADS = 64


def run_together(fn: Callable[[int], object], n: int = THREADS) -> list[object]:
    """Run fn(i) in n threads released at once; each returns its result or its exception."""
    barrier = threading.Barrier(n)

    def worker(i: int) -> object:
        try:
            barrier.wait()
            return fn(i)
        except Exception as exc:  # collected and asserted by the test
            return exc
        finally:
            connection.close()  # each thread has its own connection; do not leak it

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


@pytest.mark.parametrize("k", [1, 10])
def test_exactly_k_buys_fit_the_balance(alice, btc_usdt, assets, redis_db, k):
    hold = D("50.1")  # 0.001 BTC at 50,000 plus the 0.2% fee
    fund(alice, assets["USDT"], hold * k)
    spec = OrderSpec(side="buy", price=D("50000"), quantity=D("0.001"))

    results = run_together(lambda i: place_order(user=alice, market=btc_usdt, spec=spec))

    accepted = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert (len(accepted), len(refused)) == (k, THREADS - k), [
        r for r in results if not isinstance(r, Order | InsufficientFunds)
    ]
    assert balance_of(alice, assets["USDT"]) == (D("0"), hold * k)
    assert Order.objects.aggregate(total=Sum("hold_remaining"))["total"] == hold * k
    assert OutboxEntry.objects.filter(published_at__isnull=False).count() == k
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == k


def test_concurrent_buys_and_sells_each_fit_their_own_balance(alice, btc_usdt, assets, redis_db):
    fund(alice, assets["USDT"], "250.5")  # 5 buys of 50.1
    fund(alice, assets["BTC"], "0.007")  # 7 sells of 0.001

    def place(i: int) -> Order:
        side = "buy" if i % 2 else "sell"
        price = D("49000") if side == "buy" else D("51000")
        hold_price = D("50000") if side == "buy" else price
        return place_order(
            user=alice,
            market=btc_usdt,
            spec=OrderSpec(side=side, price=hold_price, quantity=D("0.001")),
        )

    results = run_together(place)

    accepted = [r for r in results if isinstance(r, Order)]
    assert sorted(o.side for o in accepted) == ["buy"] * 5 + ["sell"] * 7
    assert all(isinstance(r, Order | InsufficientFunds) for r in results)
    assert balance_of(alice, assets["USDT"]) == (D("0"), D("250.5"))
    assert balance_of(alice, assets["BTC"]) == (D("0"), D("0.007"))


def test_same_client_order_id_from_many_threads_creates_one_order(
    alice, btc_usdt, assets, redis_db
):
    fund(alice, assets["USDT"], "1000")
    spec = OrderSpec(side="buy", price=D("50000"), quantity=D("0.001"), client_order_id="once")

    results = run_together(lambda i: place_order(user=alice, market=btc_usdt, spec=spec), n=16)

    orders = [r for r in results if isinstance(r, Order)]
    # A loser whose rival was still uncommitted may be told to retry; never a second order.
    others = [r for r in results if not isinstance(r, Order)]
    assert all(isinstance(r, DomainError) and r.code == "duplicate_client_order_id" for r in others)
    assert len({o.pk for o in orders}) == 1
    assert Order.objects.count() == 1
    assert balance_of(alice, assets["USDT"]) == (D("949.9"), D("50.1"))
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 1
