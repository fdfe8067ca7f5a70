"""The live server fixture answers, and a signed request reaches the signing layer."""

from __future__ import annotations

import pytest

from tests.api.conftest import SignedClient, call, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


def test_a_bad_signature_is_refused_in_binance_shape(live_api, alice):
    key, _secret = make_key(alice)
    client = SignedClient(live_api, key, "not-the-secret")
    answer = client.request("GET", "/api/v3/account")
    assert answer.status in (401, 404)  # 404 until the account endpoint exists
    assert call(live_api, "GET", "/favicon.ico").status == 200
