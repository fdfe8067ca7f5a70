"""The v1 lists read a fixed number of queries, however many rows a page holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from markets.models import Market
from tests.conftest import fund
from tests.trading import conftest as trading_fixtures
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


def _queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(path)
    assert answer.status_code == 200, answer.content
    return len(captured.captured_queries)


def _buy(user: User, market: Market, price: str) -> None:
    spec = OrderSpec(side="buy", price=Decimal(price), quantity=Decimal("0.001"))
    place_order(user=user, market=market, spec=spec)


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/balances", "/api/v1/deposits"])
def test_a_page_costs_the_same_queries_for_2_or_8_rows(alice, assets, btc_usdt, path) -> None:
    client = APIClient()
    client.force_login(alice)
    for code in ("USDT", "BTC"):
        fund(alice, assets[code], "1000")
    for n in range(2):
        _buy(alice, btc_usdt, f"4900{n}")
    few = _queries(client, path)
    for code in ("ETH", "IRT"):
        fund(alice, assets[code], "1000")
    for _ in range(2):
        fund(alice, assets["USDT"], "1")
    for n in range(6):
        _buy(alice, btc_usdt, f"4910{n}")
    assert _queries(client, path) == few
