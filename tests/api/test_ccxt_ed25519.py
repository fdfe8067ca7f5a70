"""An Ed25519 API key used by an unmodified ccxt.binance: the secret is the private key's PEM,
ccxt signs with it (base64, URL-encoded), the exchange keeps only the public key."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts.models import ApiKey, ApiKeyType, Asset, User
from accounts.services.apikeys import create_api_key
from markets.models import Market
from tests.api.test_ccxt_public import RecordingAdapter, RefusingAdapter
from tests.conftest import fund, ledger_snapshot
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running
from trading.models import Order, OrderStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


def _pems() -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def _client(base: str, key: str, secret: str) -> Any:
    api = dict.fromkeys(("public", "private"), base + "/api/v3")
    api.update({k: base + "/unsupported" for k in ccxt.binance().urls["api"] if k not in api})
    exchange = ccxt.binance(
        {
            "urls": {"api": api},
            "apiKey": key,
            "secret": secret,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    exchange.session.mount("http://", RecordingAdapter([]))
    exchange.session.mount("https://", RefusingAdapter())
    exchange.load_markets()
    return exchange


def test_ccxt_trades_with_an_ed25519_key(
    live_api: str,
    alice: User,
    assets: dict[str, Asset],
    btc_usdt: Market,  # noqa: F811
) -> None:
    private_pem, public_pem = _pems()
    created = create_api_key(
        user=alice,
        label="ed25519",
        key_type=ApiKeyType.ED25519,
        can_trade=True,
        public_key_pem=public_pem,
    )
    assert created.secret is None  # nothing secret is kept: only the public key
    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert stored.secret_encrypted is None
    fund(alice, assets["USDT"], "10000")
    exchange = _client(live_api, created.api_key.key, private_pem)

    balance = exchange.fetch_balance()
    assert balance["USDT"]["free"] == pytest.approx(10000)
    with loops_running(["BTC-USDT"]):
        order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
        assert order["status"] == "open"
        exchange.cancel_order(order["id"], "BTC/USDT")
    assert Order.objects.get(pk=int(order["id"])).status == OrderStatus.CANCELED


def test_a_wrong_ed25519_key_is_an_authentication_error_and_changes_nothing(
    live_api: str,
    alice: User,
    assets: dict[str, Asset],
    btc_usdt: Market,  # noqa: F811
) -> None:
    _private, public_pem = _pems()
    other_private, _public = _pems()
    created = create_api_key(
        user=alice,
        label="ed25519",
        key_type=ApiKeyType.ED25519,
        can_trade=True,
        public_key_pem=public_pem,
    )
    fund(alice, assets["USDT"], "10000")
    exchange = _client(live_api, created.api_key.key, other_private)
    before, orders = ledger_snapshot(), Order.objects.count()
    with pytest.raises(ccxt.AuthenticationError):
        exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    assert (ledger_snapshot(), Order.objects.count()) == (before, orders)
