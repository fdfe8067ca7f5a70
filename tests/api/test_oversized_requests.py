"""Too many parameters or too large a body: a clear error in each API's shape, never a 500
or Django's HTML page, and nothing changed."""

from __future__ import annotations

import pytest

from tests.api.conftest import SignedClient, call, make_key
from tests.conftest import ledger_snapshot
from trading.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

MANY = {f"p{i}": 1 for i in range(1100)}  # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS: 1000


@pytest.mark.parametrize("path", ["/api/v3/account", "/api/v3/openOrders", "/api/v3/depth"])
def test_too_many_parameters_on_v3(live_api, alice, path):
    key, secret = make_key(alice)
    before, orders = ledger_snapshot(), Order.objects.count()
    signed = SignedClient(live_api, key, secret).payload({"symbol": "BTCUSDT", **MANY})
    answer = call(live_api, "GET", path, query=signed, headers={"X-MBX-APIKEY": key})
    assert answer.status == 400, answer.body
    assert answer.code == -1101, answer.body
    assert (ledger_snapshot(), Order.objects.count()) == (before, orders)


def test_too_many_parameters_on_v1(live_api, alice):
    key, secret = make_key(alice)
    signed = SignedClient(live_api, key, secret).payload(MANY)
    answer = call(live_api, "GET", "/api/v1/markets", query=signed, headers={"X-MBX-APIKEY": key})
    assert answer.status == 400, answer.body
    assert answer.body["code"] == "request_too_many_parameters", answer.body
