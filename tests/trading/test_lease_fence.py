"""The lease's own guarantees across a Redis flush (issue #8, defect 1).

Tokens rise across FLUSHALL for every role without the caller passing a floor, a deposed
owner learns it at its next renewal, and the heartbeat keeps a lease alive while its
thread is busy and gives it up when Redis no longer holds it.
"""

from __future__ import annotations

import time

import pytest
import redis

from trading.lease import Lease, LeaseLost
from trading.models import LeaseFence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


@pytest.mark.parametrize("role", ["matching", "settlement"])
def test_tokens_rise_across_a_flush_and_the_old_owner_is_deposed(
    role: str, redis_db: redis.Redis
) -> None:
    old = Lease(role=role, symbol="LF-USDT")
    assert old.acquire()

    redis_db.flushdb()  # the suite's database: FLUSHALL as far as the exchange can tell
    new = Lease(role=role, symbol="LF-USDT")

    assert new.acquire()
    assert new.token > old.token
    assert old.renew() is False
    assert new.renew() is True
    assert LeaseFence.objects.get(name=f"lease:{role}:LF-USDT").token == new.token


def test_a_held_lease_is_refused_and_spends_no_token(redis_db: redis.Redis) -> None:
    owner = Lease(role="matching", symbol="LF-USDT")
    assert owner.acquire()

    assert Lease(role="matching", symbol="LF-USDT").acquire() is False
    assert LeaseFence.objects.get(name="lease:matching:LF-USDT").token == owner.token


def test_a_token_redis_granted_before_the_fence_existed_is_never_reused(
    redis_db: redis.Redis,
) -> None:
    # A deployment upgraded from the Redis-only counter: Redis has granted up to 57.
    redis_db.set("lease:settlement:LF-USDT:token", 57)

    lease = Lease(role="settlement", symbol="LF-USDT")

    assert lease.acquire()
    assert lease.token == 58


def test_the_floor_still_lifts_the_first_durable_token(redis_db: redis.Redis) -> None:
    lease = Lease(role="matching", symbol="LF-USDT")

    assert lease.acquire(floor=40)
    assert lease.token == 41


def test_the_heartbeat_keeps_a_busy_owner_and_reports_a_flush(redis_db: redis.Redis) -> None:
    lease = Lease(role="settlement", symbol="LF-USDT", ttl_ms=300)
    assert lease.acquire()
    lease.start_heartbeat()
    try:
        time.sleep(1.0)  # over three TTLs without the owner renewing itself
        lease.renew_if_due()  # still ours
        assert redis_db.exists("lease:settlement:LF-USDT")

        redis_db.flushdb()
        time.sleep(0.3)

        with pytest.raises(LeaseLost):
            lease.renew_if_due()
    finally:
        lease.release()
