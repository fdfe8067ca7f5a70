"""Idempotency-Key on the v1 POSTs that move money: a repeat gets the first answer and moves
nothing, the same key with another body is refused, concurrent duplicates run once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from accounts.models import Asset, IdempotencyRecord, User
from exchange.api.v1.idempotency import IdempotencyKeyInProgress, fingerprint, idempotent
from tests.api.conftest import SignedClient, call, make_key
from tests.api.test_v1_support import JsonSigned, limit_order
from tests.conftest import balance_of, fund
from tests.trading import conftest as trading_fixtures
from tests.trading.conftest import snapshot
from trading.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


@pytest.fixture
def signed(live_api: str, alice: User, assets: dict[str, Asset], btc_usdt) -> JsonSigned:
    fund(alice, assets["USDT"], "20000")
    return JsonSigned(live_api, *make_key(alice))


def test_a_repeat_gets_the_first_answer_and_moves_nothing(signed, alice, assets) -> None:
    headers = {"Idempotency-Key": "order-2026-12-07-1"}
    first = signed.request("POST", "/api/v1/orders", body=limit_order(), headers=headers)
    assert first.status == 201, first.body
    after_first = snapshot()
    # Signed afresh (a new timestamp in the query string), same body: a retry.
    again = signed.request("POST", "/api/v1/orders", body=limit_order(), headers=headers)
    assert (again.status, again.body) == (201, first.body)
    assert again.headers.get("idempotent-replayed") == "true"
    assert snapshot() == after_first
    assert Order.objects.filter(user=alice).count() == 1
    assert balance_of(alice, assets["USDT"]) == (D("14990"), D("5010"))


def test_a_form_body_retry_signed_afresh_is_the_same_request(live_api, alice, assets, btc_usdt):
    fund(alice, assets["USDT"], "6000")
    client = SignedClient(live_api, *make_key(alice))
    now = int(time.time() * 1000)
    headers = {
        "X-MBX-APIKEY": client.key,
        "Content-Type": "application/x-www-form-urlencoded",
        "Idempotency-Key": "form-1",
    }
    answers = [
        call(
            live_api,
            "POST",
            "/api/v1/orders",
            body=client.payload(limit_order(), timestamp=stamp).encode(),
            headers=headers,
        )
        for stamp in (now, now + 1)  # two signings of one request
    ]
    assert answers[0].status == 201, answers[0].body
    assert answers[1].body == answers[0].body
    assert Order.objects.filter(user=alice).count() == 1


def test_the_same_key_with_another_body_is_refused(signed, alice) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = signed.request("POST", "/api/v1/orders", body=limit_order(), headers=headers)
    assert first.status == 201
    before = snapshot()
    other = signed.request(
        "POST", "/api/v1/orders", body=limit_order(quantity="0.2"), headers=headers
    )
    assert (other.status, other.code) == (422, "idempotency_key_reused")
    elsewhere = signed.request(
        "POST", "/api/v1/orders/batch", body={"orders": [limit_order()]}, headers=headers
    )
    assert (elsewhere.status, elsewhere.code) == (422, "idempotency_key_reused")
    assert snapshot() == before


def test_keys_are_per_user(signed, live_api, bob, assets) -> None:
    fund(bob, assets["USDT"], "6000")
    headers = {"Idempotency-Key": "shared-name"}
    mine = signed.request("POST", "/api/v1/orders", body=limit_order(), headers=headers)
    theirs = JsonSigned(live_api, *make_key(bob)).request(
        "POST", "/api/v1/orders", body=limit_order(), headers=headers
    )
    assert (mine.status, theirs.status) == (201, 201)
    assert mine.body["id"] != theirs.body["id"]


def test_a_refused_request_frees_its_key(signed, alice, assets) -> None:
    headers = {"Idempotency-Key": "retry-after-deposit"}
    big = limit_order(quantity="0.5")  # 25,050 USDT with the fee hold: more than 20,000
    refused = signed.request("POST", "/api/v1/orders", body=big, headers=headers)
    assert (refused.status, refused.code) == (409, "insufficient_funds")
    assert not IdempotencyRecord.objects.exists()
    fund(alice, assets["USDT"], "10000")
    placed = signed.request("POST", "/api/v1/orders", body=big, headers=headers)
    assert placed.status == 201, placed.body


@pytest.mark.parametrize(
    ("_case", "key"), [("empty", ""), ("space", "a b"), ("too long", "k" * 256)]
)
def test_a_malformed_key_is_refused(signed, _case, key) -> None:
    before = snapshot()
    answer = signed.request(
        "POST", "/api/v1/orders", body=limit_order(), headers={"Idempotency-Key": key}
    )
    assert (answer.status, answer.code) == (400, "idempotency_key_invalid")
    assert snapshot() == before


def test_a_batch_repeat_places_nothing_more(signed, alice) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    body = {"orders": [limit_order(quantity="0.01"), limit_order(price="1")]}
    first = signed.request("POST", "/api/v1/orders/batch", body=body, headers=headers)
    again = signed.request("POST", "/api/v1/orders/batch", body=body, headers=headers)
    assert first.status == again.status == 200
    assert again.body == first.body
    assert [r["ok"] for r in first.body["results"]] == [True, False]
    assert Order.objects.filter(user=alice).count() == 1


def test_concurrent_duplicates_over_http_run_once(signed, alice) -> None:
    headers = {"Idempotency-Key": "burst"}
    now = int(time.time() * 1000)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda n: signed.request(
                    "POST", "/api/v1/orders", body=limit_order(), headers=headers, timestamp=now + n
                ),
                range(6),  # six signings (distinct timestamps) of one request
            )
        )
    assert Order.objects.filter(user=alice).count() == 1
    placed = [a for a in answers if a.status == 201]
    assert placed, [a.body for a in answers]
    assert {a.body["id"] for a in placed} == {Order.objects.get(user=alice).pk}
    assert {a.code for a in answers if a.status != 201} <= {"idempotency_key_in_progress"}


def _request(body: dict[str, str]) -> Request:
    raw = APIRequestFactory().post(
        "/api/v1/orders",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="race",
    )
    return Request(raw)


def test_a_duplicate_arriving_while_the_first_runs_is_refused_then_replayed(alice) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow() -> Response:
        runs.append(1)
        started.set()
        release.wait(10)
        return Response({"id": 7}, status=201)

    def first() -> Response:
        try:
            return idempotent(_request({"a": "1"}), user=alice, run=slow)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(first)
        assert started.wait(10)
        with pytest.raises(IdempotencyKeyInProgress):
            idempotent(_request({"a": "1"}), user=alice, run=slow)
        release.set()
        assert pending.result().status_code == 201
    replay = idempotent(_request({"a": "1"}), user=alice, run=slow)
    assert (replay.status_code, replay.data, replay[("Idempotent-Replayed")]) == (
        201,
        {"id": 7},
        "true",
    )
    assert runs == [1]


def test_the_fingerprint_ignores_only_the_signing_pairs() -> None:
    factory = APIRequestFactory()

    def form(text: str) -> Request:
        return Request(
            factory.post(
                "/api/v1/orders", data=text, content_type="application/x-www-form-urlencoded"
            )
        )

    one = fingerprint(form("timestamp=1&side=buy&recvWindow=5000&signature=aa"))
    two = fingerprint(form("timestamp=2&side=buy&signature=bb"))
    assert one == two
    assert fingerprint(form("timestamp=1&side=sell&signature=aa")) != one


def test_an_unexpected_failure_keeps_the_key_answering_outcome_unknown(alice) -> None:
    def broken() -> Response:
        raise RuntimeError("the response was lost after the commit")

    with pytest.raises(RuntimeError):
        idempotent(_request({"a": "1"}), user=alice, run=broken)
    ran: list[int] = []

    def counted() -> Response:
        ran.append(1)
        return Response()

    again = idempotent(_request({"a": "1"}), user=alice, run=counted)
    assert (again.status_code, again.data["code"]) == (500, "outcome_unknown")
    assert ran == []  # never a second run: the first may have moved money


def test_an_expired_key_is_claimed_afresh(alice, settings) -> None:
    first = idempotent(_request({"a": "1"}), user=alice, run=lambda: Response({"n": 1}, 201))
    assert first.status_code == 201
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1)
    )
    fresh = idempotent(_request({"b": "2"}), user=alice, run=lambda: Response({"n": 2}, 201))
    assert fresh.data == {"n": 2}
    assert IdempotencyRecord.objects.get().response_body == {"n": 2}


def test_a_body_drf_refuses_frees_the_key(alice) -> None:
    from rest_framework.exceptions import ValidationError

    def invalid() -> Response:
        raise ValidationError({"amount": ["This field is required."]})

    with pytest.raises(ValidationError):
        idempotent(_request({"a": "1"}), user=alice, run=invalid)
    assert not IdempotencyRecord.objects.exists()
