"""Trading fixtures: three markets with realistic rules, Redis isolation.

The ledger auditor after every database test (opt-out: `ledger_drift`) is in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings

from accounts.models import Asset
from markets.models import Market
from tests.conftest import ledger_snapshot
from tests.factories import MarketFactory
from trading.models import Order, OutboxEntry
from trading.redis import get_redis, reset_redis_clients
from trading.services.accept_batch import stop_batcher


@pytest.fixture(scope="session", autouse=True)
def _stop_accept_batcher(django_db_setup: None) -> Iterator[None]:
    """The accept batcher's thread keeps a connection: close it before the test DB is dropped."""
    yield
    stop_batcher()


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    """The exchange's Redis database, emptied before and after the test.

    FLUSHDB of the database named in REDIS_URL only, never FLUSHALL: other engineers and
    services share the server. Refuses to run against database 0 (the default one).
    """
    reset_redis_clients()
    client = get_redis()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0, f"tests must not flush Redis db 0 (REDIS_URL={settings.REDIS_URL})"
    client.flushdb()
    yield client
    client.flushdb()
    reset_redis_clients()


def make_market(symbol: str, base: Asset, quote: Asset, **rules: Any) -> Market:
    """A TRADING market (MarketFactory's rules); `rules` override them."""
    return MarketFactory.create(symbol=symbol, base=base, quote=quote, **rules)


@pytest.fixture
def btc_usdt(assets: dict[str, Asset]) -> Market:
    """BTC priced in USDT: tick 0.01, lot 0.00001, min 0.0001 BTC, min value 5 USDT,
    fees 0.1% maker / 0.2% taker, ±10% band around a last price of 50,000."""
    return make_market(
        "BTC-USDT",
        assets["BTC"],
        assets["USDT"],
        lot_size=Decimal("0.00001"),
        min_quantity=Decimal("0.0001"),
        max_quantity=Decimal("100"),
        last_price=Decimal("50000"),
    )


@pytest.fixture
def eth_usdt(assets: dict[str, Asset]) -> Market:
    """ETH priced in USDT: tick 0.01, lot 0.0001, 0.1% both sides, no last price yet."""
    return make_market(
        "ETH-USDT",
        assets["ETH"],
        assets["USDT"],
        taker_fee=Decimal("0.001"),
        max_quantity=Decimal("10000"),
    )


@pytest.fixture
def usdt_irt(assets: dict[str, Asset]) -> Market:
    """USDT priced in IRT (0 decimals): tick 10, lot 0.01, min value 100,000 IRT,
    fees 0.25% / 0.35%, ±5% band around 60,000."""
    return make_market(
        "USDT-IRT",
        assets["USDT"],
        assets["IRT"],
        tick_size=Decimal("10"),
        lot_size=Decimal("0.01"),
        min_quantity=Decimal("1"),
        max_quantity=Decimal("1000000"),
        min_notional=Decimal("100000"),
        maker_fee=Decimal("0.0025"),
        taker_fee=Decimal("0.0035"),
        price_band_pct=Decimal("5"),
        last_price=Decimal("60000"),
    )


def snapshot() -> dict[str, Any]:
    """Everything a rejected order request must leave untouched: the ledger, orders, outbox."""
    return {
        **ledger_snapshot(),
        "orders": list(
            Order.objects.order_by("pk").values_list(
                "pk", "status", "hold_remaining", "filled_quantity"
            )
        ),
        "outbox": list(OutboxEntry.objects.order_by("pk").values_list("pk", "published_at")),
    }
