"""Group commit of place_order (trading.services.accept_batch) against PostgreSQL and Redis.

The batcher's first batch is gated until a given number of requests are queued, and the
callers' threads are started one at a time, so each test knows exactly which requests share
one transaction and in which order they arrived.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.errors import InsufficientFunds
from accounts.models import EntryKind, JournalEntry, Posting
from tests.conftest import balance_of, fund
from trading.errors import DuplicateClientOrderId
from trading.models import Order, OutboxEntry
from trading.services import accept_batch, accept_write
from trading.services.accept_batch import AcceptBatcher, get_batcher, stop_batcher
from trading.services.orders import OrderSpec, place_order
from trading.services.outbox import sweep_outbox
from trading.streams import input_stream

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
HOLD = D("50.1")  # 0.001 BTC at 50,000 plus the 0.2% taker fee


def buy(price: str = "50000", **kw: object) -> OrderSpec:
    return OrderSpec(side="buy", price=D(price), quantity=D("0.001"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """gate(n): the batcher's next batch waits until n requests are queued."""
    stop_batcher()  # a thread already waiting would not see the patch
    wanted = {"n": 0}
    original = AcceptBatcher._take

    def take(self: AcceptBatcher) -> list[accept_batch.AcceptRequest] | None:
        deadline = time.monotonic() + 10
        while len(self._pending) < wanted["n"] and time.monotonic() < deadline:
            time.sleep(0.001)
        wanted["n"] = 0  # one batch only
        return original(self)

    monkeypatch.setattr(AcceptBatcher, "_take", take)
    yield lambda n: wanted.update(n=n)
    stop_batcher()


def in_one_batch(gate: Callable[[int], None], calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads, queued in list order, applied as one batch; their results."""
    stop_batcher()  # a running thread may be waiting already: the gate needs a fresh one
    gate(len(calls))
    batcher = get_batcher()
    before = batcher.stats.batches
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # asserted by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for i, thread in enumerate(threads):
        thread.start()
        deadline = time.monotonic() + 10
        while len(batcher._pending) < i + 1 and batcher.stats.batches == before:
            assert time.monotonic() < deadline, "the call never reached the batcher"
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    assert batcher.stats.batches == before + 1
    assert batcher.stats.largest >= len(calls)
    return results


def test_concurrent_callers_share_one_transaction(alice, bob, btc_usdt, assets, redis_db, gate):
    fund(alice, assets["USDT"], HOLD * 3)
    fund(bob, assets["USDT"], HOLD * 2)
    users = [alice, bob, alice, bob, alice]

    results = in_one_batch(
        gate,
        [lambda u=u: place_order(user=u, market=btc_usdt, spec=buy()) for u in users],  # type: ignore[misc]
    )

    assert all(isinstance(r, Order) for r in results), results
    orders = list(Order.objects.order_by("pk"))
    assert [o.pk for o in orders] == [r.pk for r in results]  # type: ignore[union-attr]
    assert [o.user_id for o in orders] == [u.pk for u in users]  # ids follow arrival
    assert balance_of(alice, assets["USDT"]) == (D("0"), HOLD * 3)
    assert balance_of(bob, assets["USDT"]) == (D("0"), HOLD * 2)
    for order in orders:
        entry = JournalEntry.objects.get(ref=f"order:{order.pk}")
        assert entry.kind == EntryKind.ORDER_HOLD
        assert sorted(Posting.objects.filter(entry=entry).values_list("bucket", "amount")) == [
            ("available", -HOLD),
            ("locked", HOLD),
        ]
    # One transaction wrote every order: they all carry the same xmin.
    assert _order_xids() == 1
    entries = list(OutboxEntry.objects.order_by("pk"))
    assert [e.payload["order_id"] for e in entries] == [o.pk for o in orders]
    assert all(e.published_at is not None for e in entries)
    messages = [json.loads(f[b"c"]) for _, f in redis_db.xrange(input_stream(btc_usdt.symbol))]
    assert [(m["cid"], m["order_id"]) for m in messages] == [
        (e.pk, e.payload["order_id"]) for e in entries
    ]


def _order_xids() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT xmin::text) FROM trading_order")
        return int(cursor.fetchone()[0])


def test_a_rejection_in_a_batch_writes_nothing_and_spares_the_others(
    alice, bob, btc_usdt, assets, redis_db, gate
):
    fund(alice, assets["USDT"], HOLD)  # one order's worth
    fund(bob, assets["USDT"], HOLD)

    first, refused, other = in_one_batch(
        gate,
        [
            lambda: place_order(user=alice, market=btc_usdt, spec=buy()),
            lambda: place_order(user=alice, market=btc_usdt, spec=buy("49000")),
            lambda: place_order(user=bob, market=btc_usdt, spec=buy()),
        ],
    )

    assert isinstance(first, Order)
    assert isinstance(other, Order)
    assert isinstance(refused, InsufficientFunds)
    assert refused.code == "insufficient_funds"
    assert list(Order.objects.order_by("pk").values_list("pk", flat=True)) == [first.pk, other.pk]
    assert set(JournalEntry.objects.filter(kind=EntryKind.ORDER_HOLD).values_list("ref")) == {
        (f"order:{first.pk}",),
        (f"order:{other.pk}",),
    }
    assert Posting.objects.filter(entry__kind=EntryKind.ORDER_HOLD).count() == 4
    assert sorted(OutboxEntry.objects.values_list("payload__order_id", flat=True)) == [
        first.pk,
        other.pk,
    ]
    assert balance_of(alice, assets["USDT"]) == (D("0"), HOLD)
    assert balance_of(bob, assets["USDT"]) == (D("0"), HOLD)
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 2


def test_same_client_order_id_twice_in_one_batch(alice, btc_usdt, assets, redis_db, gate):
    fund(alice, assets["USDT"], HOLD * 5)

    first, repeat, different, other = in_one_batch(
        gate,
        [
            lambda: place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a")),
            lambda: place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a")),
            lambda: place_order(
                user=alice, market=btc_usdt, spec=buy("49000", client_order_id="a")
            ),
            lambda: place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="b")),
        ],
    )

    assert isinstance(first, Order)
    assert isinstance(other, Order)
    assert isinstance(repeat, Order)
    assert repeat.pk == first.pk
    assert isinstance(different, DuplicateClientOrderId)
    assert sorted(Order.objects.values_list("client_order_id", flat=True)) == ["a", "b"]
    assert balance_of(alice, assets["USDT"]) == (HOLD * 3, HOLD * 2)
    assert OutboxEntry.objects.count() == 2
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 2


def test_a_stored_client_order_id_in_a_batch_returns_the_stored_order(
    alice, btc_usdt, assets, redis_db, gate
):
    fund(alice, assets["USDT"], HOLD * 3)
    stored = place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a"))

    repeat, different, fresh = in_one_batch(
        gate,
        [
            lambda: place_order(user=alice, market=btc_usdt, spec=buy(client_order_id="a")),
            lambda: place_order(
                user=alice, market=btc_usdt, spec=buy("49000", client_order_id="a")
            ),
            lambda: place_order(user=alice, market=btc_usdt, spec=buy()),
        ],
    )

    assert isinstance(repeat, Order)
    assert repeat.pk == stored.pk
    assert isinstance(different, DuplicateClientOrderId)
    assert isinstance(fresh, Order)
    assert Order.objects.count() == 2
    assert balance_of(alice, assets["USDT"]) == (HOLD, HOLD * 2)


def test_a_failed_batch_falls_back_to_one_transaction_per_order(
    alice, bob, btc_usdt, assets, redis_db, gate, monkeypatch
):
    fund(alice, assets["USDT"], HOLD)
    fund(bob, assets["USDT"], HOLD)
    original = accept_write._insert_orders

    def insert_then_fail(cursor, held, **kwargs):  # type: ignore[no-untyped-def]
        written = original(cursor, held, **kwargs)
        if len(held) > 1:  # the batch; the fallback's batches of one go through
            raise IntegrityError("simulated: a concurrent insert won a unique key")
        return written

    monkeypatch.setattr(accept_write, "_insert_orders", insert_then_fail)
    fallbacks = get_batcher().stats.fallbacks

    first, refused, other = in_one_batch(
        gate,
        [
            lambda: place_order(user=alice, market=btc_usdt, spec=buy()),
            lambda: place_order(user=alice, market=btc_usdt, spec=buy()),
            lambda: place_order(user=bob, market=btc_usdt, spec=buy()),
        ],
    )

    assert get_batcher().stats.fallbacks == fallbacks + 1
    assert isinstance(first, Order)
    assert isinstance(other, Order)
    assert isinstance(refused, InsufficientFunds)
    assert list(Order.objects.order_by("pk").values_list("pk", flat=True)) == [first.pk, other.pk]
    assert _order_xids() == 2  # one transaction each
    assert JournalEntry.objects.filter(kind=EntryKind.ORDER_HOLD).count() == 2
    assert balance_of(alice, assets["USDT"]) == (D("0"), HOLD)
    assert OutboxEntry.objects.filter(published_at__isnull=False).count() == 2
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 2


def test_xadd_failure_after_commit_leaves_rows_the_sweeper_sends_once(
    alice, btc_usdt, assets, redis_db, gate, monkeypatch
):
    fund(alice, assets["USDT"], HOLD * 3)

    def fail(self: Pipeline) -> list[object]:
        raise RedisConnectionError("simulated: Redis went away after COMMIT")

    monkeypatch.setattr(Pipeline, "execute", fail)
    orders = in_one_batch(
        gate, [lambda: place_order(user=alice, market=btc_usdt, spec=buy()) for _ in range(3)]
    )
    monkeypatch.undo()

    assert all(isinstance(o, Order) for o in orders), orders
    assert OutboxEntry.objects.filter(published_at__isnull=True).count() == 3
    assert redis_db.xlen(input_stream(btc_usdt.symbol)) == 0
    OutboxEntry.objects.update(created_at=timezone.now() - timedelta(seconds=30))

    assert sweep_outbox() == 3
    assert sweep_outbox() == 0

    entries = list(OutboxEntry.objects.order_by("pk"))
    messages = [json.loads(f[b"c"]) for _, f in redis_db.xrange(input_stream(btc_usdt.symbol))]
    assert [(m["cid"], m["order_id"]) for m in messages] == [
        (e.pk, e.payload["order_id"]) for e in entries
    ]
    assert sorted(m["order_id"] for m in messages) == sorted(o.pk for o in orders)  # type: ignore[union-attr]
    assert all(e.published_at is not None for e in entries)


def test_batching_off_uses_one_transaction_per_order(alice, btc_usdt, assets, redis_db, settings):
    fund(alice, assets["USDT"], HOLD)
    settings.ACCEPT_BATCHING = False
    batches = get_batcher().stats.batches

    order = place_order(user=alice, market=btc_usdt, spec=buy())

    assert get_batcher().stats.batches == batches
    assert Order.objects.get().pk == order.pk
    assert OutboxEntry.objects.get().published_at is not None


def test_a_forked_child_builds_its_own_batcher() -> None:
    parent = get_batcher()
    pid = os.fork()
    if pid == 0:  # the child: exit at once, whatever happens
        child = get_batcher()
        os._exit(0 if child is not parent and child.pid == os.getpid() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get_batcher() is parent
