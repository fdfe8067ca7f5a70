"""Signed API requests: Binance's payload rule, timing window, replay, key state, scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts import signing
from accounts.models import ApiKey, AuditLog, User
from accounts.services.apikeys import create_api_key, encrypt_secret
from accounts.signing import (
    NONCE_KEY_PREFIX,
    REPLAY_STORE_SINCE_KEY,
    ApiKeyExpired,
    ApiKeyFormatInvalid,
    ApiKeyInvalid,
    ApiKeyRevoked,
    DuplicateParameter,
    IpNotAllowed,
    RecvWindowTooLarge,
    ReplayedRequest,
    ReplayStoreUnavailable,
    ScopeMissing,
    SignatureInvalid,
    SignatureMissing,
    SignedBeforeReplayStore,
    SignedRequestError,
    TimestampOutsideRecvWindow,
    check_hmac_signature,
    split_signed_payload,
    verify_signed_request,
)
from exchange.api.auth import ApiKeySignatureAuthentication
from tests.private_servers import PrivateRedis

# Binance rest-api.md, "SIGNED Endpoint Examples": the documented example secret and payload.
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
BINANCE_TIMESTAMP = 1499827319559
# Example 3: query and body concatenated with no "&" between "GTC" and "quantity".
BINANCE_MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
BINANCE_MIXED_BODY = b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
BINANCE_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _reset_signing_clients() -> None:
    signing._redis.cache_clear()
    signing._claim_script.cache_clear()


def _started_store(client: redis.Redis) -> None:
    """Mark the nonce store as running since the epoch: no keys lost since any timestamp
    used here (Binance's example request is from 2017)."""
    client.set(REPLAY_STORE_SINCE_KEY, 0)


@pytest.fixture(autouse=True)
def replay_store() -> Iterator[redis.Redis]:
    """The nonce store (REDIS_URL's database), emptied before and after each test.

    FLUSHDB of that database only, never FLUSHALL (the server is shared), and never
    database 0. Then marked as running since the epoch (`_started_store`).
    """
    _reset_signing_clients()
    client = signing._redis()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0, "tests must not flush Redis db 0; set REDIS_URL to a database of your own"
    client.flushdb()
    _started_store(client)
    yield client
    client.flushdb()
    _reset_signing_clients()


def nonces(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match=f"{NONCE_KEY_PREFIX}*"))


@pytest.fixture
def binance_key(alice: User) -> ApiKey:
    """An HMAC key of alice's whose secret is Binance's documented example secret."""
    created = create_api_key(user=alice, label="bot", can_trade=True)
    ApiKey.objects.filter(pk=created.api_key.pk).update(
        secret_encrypted=encrypt_secret(BINANCE_SECRET)
    )
    created.api_key.refresh_from_db()
    return created.api_key


@pytest.fixture
def ed25519_pair(alice: User) -> tuple[ApiKey, Ed25519PrivateKey]:
    private_key = Ed25519PrivateKey.generate()
    pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    created = create_api_key(
        user=alice, label="ed", key_type="ed25519", public_key_pem=pem, can_trade=True
    )
    return created.api_key, private_key


def verify(key: ApiKey, **overrides: object) -> ApiKey:
    kwargs: dict[str, object] = {
        "api_key": key.key,
        "method": "POST",
        "raw_query": "",
        "raw_body": f"{BINANCE_PAYLOAD}&signature={BINANCE_SIGNATURE}".encode(),
        "remote_ip": "203.0.113.7",
        "required_scope": "trade",
        "now_ms": BINANCE_TIMESTAMP + 100,
    }
    kwargs.update(overrides)
    return verify_signed_request(**kwargs)  # type: ignore[arg-type]


def assert_untouched(key: ApiKey) -> None:
    key.refresh_from_db()
    assert key.last_used_at is None
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["api_key.created"]


def test_binance_documented_vector() -> None:
    assert sign(BINANCE_SECRET, BINANCE_PAYLOAD) == BINANCE_SIGNATURE
    check_hmac_signature(
        secret=BINANCE_SECRET, payload=BINANCE_PAYLOAD.encode(), signature=BINANCE_SIGNATURE
    )


@pytest.mark.parametrize(
    ("_case", "raw_query", "raw_body", "payload"),
    [
        ("query only", f"{BINANCE_PAYLOAD}&signature=ab", b"", BINANCE_PAYLOAD),
        ("body only", "", f"{BINANCE_PAYLOAD}&signature=ab".encode(), BINANCE_PAYLOAD),
        (
            "signature in the query, params in both",
            f"{BINANCE_MIXED_QUERY}&signature=ab",
            BINANCE_MIXED_BODY,
            BINANCE_MIXED_QUERY + BINANCE_MIXED_BODY.decode(),
        ),
        (
            "signature first keeps the rest verbatim",
            f"signature=ab&{BINANCE_PAYLOAD}",
            b"",
            BINANCE_PAYLOAD,
        ),
    ],
)
def test_payload_is_query_then_body_without_signature(
    _case: str, raw_query: str, raw_body: bytes, payload: str
) -> None:
    signed = split_signed_payload(raw_query, raw_body)

    assert signed.payload == payload.encode()
    assert signed.signature == "ab"
    assert signed.timestamp == "1499827319559"
    assert signed.recv_window == "5000"


@pytest.mark.django_db
def test_documented_request_is_accepted_and_marks_the_key_used(binance_key: ApiKey) -> None:
    key = verify(binance_key)

    assert key.pk == binance_key.pk
    binance_key.refresh_from_db()
    assert binance_key.last_used_at is not None


@pytest.mark.django_db
def test_mixed_query_and_body_use_binance_concatenation(binance_key: ApiKey) -> None:
    verify(
        binance_key,
        raw_query=BINANCE_MIXED_QUERY,
        raw_body=BINANCE_MIXED_BODY + f"&signature={BINANCE_MIXED_SIGNATURE}".encode(),
    )


@pytest.mark.django_db
def test_uppercase_hex_signature_is_accepted(binance_key: ApiKey) -> None:
    body = f"{BINANCE_PAYLOAD}&signature={BINANCE_SIGNATURE.upper()}".encode()

    assert verify(binance_key, raw_body=body).pk == binance_key.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "body"),
    [
        ("forged signature", f"{BINANCE_PAYLOAD}&signature={'0' * 64}"),
        ("signature not hex", f"{BINANCE_PAYLOAD}&signature={'z' * 64}"),
        (
            "tampered price",
            f"{BINANCE_PAYLOAD.replace('0.1', '0.2')}&signature={BINANCE_SIGNATURE}",
        ),
        ("extra parameter", f"{BINANCE_PAYLOAD}&icebergQty=9&signature={BINANCE_SIGNATURE}"),
        (
            "same params, different encoding",
            f"{BINANCE_PAYLOAD.replace('LTCBTC', 'LTC%42TC')}&signature={BINANCE_SIGNATURE}",
        ),
    ],
)
def test_bad_signature_is_refused_and_changes_nothing(
    binance_key: ApiKey, _case: str, body: str
) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(binance_key, raw_body=body.encode())

    assert caught.value.code == "signature_invalid"
    assert caught.value.binance_code == -1022
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_tampered_query_is_refused(binance_key: ApiKey) -> None:
    with pytest.raises(SignatureInvalid):
        verify(
            binance_key,
            raw_query=BINANCE_MIXED_QUERY.replace("BUY", "SELL"),
            raw_body=BINANCE_MIXED_BODY + f"&signature={BINANCE_MIXED_SIGNATURE}".encode(),
        )
    assert_untouched(binance_key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "now_ms", "accepted"),
    [
        ("oldest accepted: exactly recvWindow old", BINANCE_TIMESTAMP + 5000, True),
        ("stale: recvWindow + 1 ms old", BINANCE_TIMESTAMP + 5001, False),
        ("newest accepted: 999 ms ahead", BINANCE_TIMESTAMP - 999, True),
        ("future: 1000 ms ahead", BINANCE_TIMESTAMP - 1000, False),
        ("stale: a minute old", BINANCE_TIMESTAMP + 60_000, False),
    ],
)
def test_timestamp_window(binance_key: ApiKey, _case: str, now_ms: int, accepted: bool) -> None:
    if accepted:
        verify(binance_key, now_ms=now_ms)
        return
    with pytest.raises(TimestampOutsideRecvWindow) as caught:
        verify(binance_key, now_ms=now_ms)
    assert caught.value.binance_code == -1021
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_recv_window_above_maximum_is_refused(binance_key: ApiKey) -> None:
    payload = BINANCE_PAYLOAD.replace("recvWindow=5000", "recvWindow=60001")
    body = f"{payload}&signature={sign(BINANCE_SECRET, payload)}".encode()

    with pytest.raises(RecvWindowTooLarge) as caught:
        verify(binance_key, raw_body=body)

    assert caught.value.binance_code == -1131
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_default_recv_window_is_5000(binance_key: ApiKey) -> None:
    payload = BINANCE_PAYLOAD.replace("&recvWindow=5000", "")
    body = f"{payload}&signature={sign(BINANCE_SECRET, payload)}".encode()

    with pytest.raises(TimestampOutsideRecvWindow):
        verify(binance_key, raw_body=body, now_ms=BINANCE_TIMESTAMP + 5001)
    verify(binance_key, raw_body=body, now_ms=BINANCE_TIMESTAMP + 5000)


@pytest.mark.django_db
def test_verbatim_replay_inside_the_window_is_refused(binance_key: ApiKey) -> None:
    verify(binance_key)
    binance_key.refresh_from_db()
    first_use = binance_key.last_used_at

    for signature in (BINANCE_SIGNATURE, BINANCE_SIGNATURE.upper()):
        with pytest.raises(ReplayedRequest) as caught:
            verify(
                binance_key,
                raw_body=f"{BINANCE_PAYLOAD}&signature={signature}".encode(),
                now_ms=BINANCE_TIMESTAMP + 4000,
            )
        assert caught.value.code == "replayed_request"
    binance_key.refresh_from_db()
    assert binance_key.last_used_at == first_use


@pytest.mark.django_db
def test_replay_after_the_window_is_refused_by_the_timestamp(binance_key: ApiKey) -> None:
    verify(binance_key)

    with pytest.raises(TimestampOutsideRecvWindow):
        verify(binance_key, now_ms=BINANCE_TIMESTAMP + 5001)


@pytest.mark.django_db
def test_revoked_key_is_refused(binance_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=binance_key.pk).update(revoked_at=timezone.now())

    with pytest.raises(ApiKeyRevoked) as caught:
        verify(binance_key)

    assert caught.value.binance_code == -2015
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_expired_key_is_refused(binance_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=binance_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(ApiKeyExpired):
        verify(binance_key)
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_ip_outside_the_allowlist_is_refused(binance_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=binance_key.pk).update(ip_allowlist=["10.0.0.0/8", "2001:db8::1/128"])

    with pytest.raises(IpNotAllowed) as caught:
        verify(binance_key, remote_ip="203.0.113.7")

    assert caught.value.code == "ip_not_allowed"
    assert_untouched(binance_key)
    assert verify(binance_key, remote_ip="10.20.30.40").pk == binance_key.pk


@pytest.mark.django_db
def test_key_without_the_scope_is_refused(binance_key: ApiKey) -> None:
    with pytest.raises(ScopeMissing) as caught:
        verify(binance_key, required_scope="withdraw")

    assert caught.value.code == "scope_missing"
    assert_untouched(binance_key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "api_key", "error"),
    [
        ("unknown key", "A" * 64, ApiKeyInvalid),
        ("malformed key", "not a key!", ApiKeyFormatInvalid),
        ("empty key", "", ApiKeyFormatInvalid),
    ],
)
def test_unknown_or_malformed_key_is_refused(
    binance_key: ApiKey, _case: str, api_key: str, error: type[SignedRequestError]
) -> None:
    with pytest.raises(error) as caught:
        verify(binance_key, api_key=api_key)

    assert caught.value.code == "api_key_invalid"
    assert_untouched(binance_key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "body", "error"),
    [
        ("no signature", BINANCE_PAYLOAD, SignatureMissing),
        (
            "two signatures",
            f"{BINANCE_PAYLOAD}&signature={BINANCE_SIGNATURE}&signature={BINANCE_SIGNATURE}",
            SignatureInvalid,
        ),
    ],
)
def test_missing_or_duplicate_signature_is_refused(
    binance_key: ApiKey, _case: str, body: str, error: type[SignedRequestError]
) -> None:
    with pytest.raises(error):
        verify(binance_key, raw_body=body.encode())
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_ed25519_round_trip(ed25519_pair: tuple[ApiKey, Ed25519PrivateKey]) -> None:
    key, private_key = ed25519_pair
    payload = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}&recvWindow=10000"
    signature = quote(base64.b64encode(private_key.sign(payload.encode())).decode(), safe="")

    accepted = verify(
        key, method="GET", raw_query=f"{payload}&signature={signature}", raw_body=b"", now_ms=None
    )

    assert accepted.pk == key.pk


@pytest.mark.django_db
def test_ed25519_signature_of_another_key_is_refused(
    ed25519_pair: tuple[ApiKey, Ed25519PrivateKey],
) -> None:
    key, _private_key = ed25519_pair
    payload = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(payload.encode())).decode()

    with pytest.raises(SignatureInvalid):
        verify(key, raw_query=f"{payload}&signature={quote(forged, safe='')}", now_ms=None)
    assert_untouched(key)


# --- the DRF authentication class, on a throwaway view


class EchoApi(APIView):
    authentication_classes = (ApiKeySignatureAuthentication,)
    permission_classes = (IsAuthenticated,)
    required_scope = "trade"

    def post(self, request: Request) -> Response:
        data: Any = request.data  # Any: a QueryDict for this form body
        return Response({"user": str(request.user), "data": data.dict()})


def signed_form_post(key: ApiKey, secret: str, params: str, **headers: str) -> Response:
    body = f"{params}&signature={sign(secret, params)}"
    request = APIRequestFactory().post(
        "/echo?",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_MBX_APIKEY=key.key,
        **headers,
    )
    return EchoApi.as_view()(request)


@pytest.mark.django_db
def test_auth_class_reads_the_raw_body_before_the_form_is_parsed(binance_key: ApiKey) -> None:
    params = f"symbol=BTCUSDT&side=BUY&quantity=1&timestamp={int(time.time() * 1000)}"

    response = signed_form_post(binance_key, BINANCE_SECRET, params)

    assert response.status_code == 200
    assert response.data["user"] == "alice@example.com"
    assert response.data["data"]["quantity"] == "1"


@pytest.mark.django_db
def test_auth_class_refusal_has_the_error_body(binance_key: ApiKey) -> None:
    params = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"

    response = signed_form_post(binance_key, "wrong-secret", params)

    assert response.status_code == 401
    assert response.data == {
        "code": "signature_invalid",
        "message": "Signature for this request is not valid.",
        "field": "signature",
    }
    assert_untouched(binance_key)


@pytest.mark.django_db
def test_auth_class_without_key_header_is_not_authenticated() -> None:
    request = APIRequestFactory().post("/echo", data={"a": "1"})

    response = EchoApi.as_view()(request)

    assert response.status_code == 401


# --- replay protection survives a nonce store that lost its keys


def signed_body(payload: str) -> bytes:
    return f"{payload}&signature={sign(BINANCE_SECRET, payload)}".encode()


def payload_stamped(timestamp: int) -> str:
    return BINANCE_PAYLOAD.replace(str(BINANCE_TIMESTAMP), str(timestamp))


@pytest.mark.django_db
def test_replay_after_the_nonce_store_was_flushed_is_refused(
    binance_key: ApiKey, replay_store: redis.Redis
) -> None:
    verify(binance_key)
    binance_key.refresh_from_db()
    first_use = binance_key.last_used_at
    replay_store.flushdb()  # FLUSHDB of this test's database: every nonce is gone

    for now_ms in (BINANCE_TIMESTAMP + 200, BINANCE_TIMESTAMP + 4000):
        with pytest.raises(SignedBeforeReplayStore) as caught:
            verify(binance_key, now_ms=now_ms)
        assert caught.value.code == "timestamp_outside_recv_window"
        assert (caught.value.binance_code, caught.value.binance_message) == (
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        )
        assert caught.value.status == 400
    binance_key.refresh_from_db()
    assert binance_key.last_used_at == first_use
    assert nonces(replay_store) == []
    # The store's start is the API server's time of its first call after the loss.
    assert int(replay_store.get(REPLAY_STORE_SINCE_KEY) or 0) == BINANCE_TIMESTAMP + 200


@pytest.mark.django_db
def test_only_requests_signed_before_the_store_was_lost_are_refused(
    binance_key: ApiKey, replay_store: redis.Redis
) -> None:
    replay_store.flushdb()
    store_began = BINANCE_TIMESTAMP + 200
    with pytest.raises(SignedBeforeReplayStore):  # the first call after the loss
        verify(binance_key, now_ms=store_began)

    # Accepted up to 999 ms before its timestamp, a request stamped store_began + 999 may
    # have been accepted before the loss; one stamped a millisecond later cannot have been.
    maybe_seen = payload_stamped(store_began + 999)
    with pytest.raises(SignedBeforeReplayStore):
        verify(binance_key, raw_body=signed_body(maybe_seen), now_ms=store_began + 1000)
    fresh = payload_stamped(store_began + 1000)
    accepted = verify(binance_key, raw_body=signed_body(fresh), now_ms=store_began + 1000)

    assert accepted.pk == binance_key.pk
    with pytest.raises(ReplayedRequest):  # and the fresh one is remembered as usual
        verify(binance_key, raw_body=signed_body(fresh), now_ms=store_began + 1500)


@pytest.fixture
def private_redis(settings: Any) -> Iterator[PrivateRedis]:
    """A throw-away redis-server as the nonce store (stopped and restarted by the test)."""
    with PrivateRedis() as server:
        settings.REDIS_URL = server.url(3)
        _reset_signing_clients()
        yield server
    _reset_signing_clients()


@pytest.mark.django_db
def test_replay_after_a_redis_restart_without_persistence_is_refused(
    binance_key: ApiKey, private_redis: PrivateRedis
) -> None:
    _started_store(private_redis.client(3))
    verify(binance_key)
    binance_key.refresh_from_db()
    first_use = binance_key.last_used_at

    private_redis.restart(mode="immediate")  # a crash: no persistence, nothing survives

    with pytest.raises(SignedBeforeReplayStore):
        verify(binance_key, now_ms=BINANCE_TIMESTAMP + 300)
    binance_key.refresh_from_db()
    assert binance_key.last_used_at == first_use
    fresh = payload_stamped(BINANCE_TIMESTAMP + 1300)
    assert verify(binance_key, raw_body=signed_body(fresh), now_ms=BINANCE_TIMESTAMP + 1400)


@pytest.mark.django_db
def test_without_the_nonce_store_requests_are_refused_with_503(
    binance_key: ApiKey, private_redis: PrivateRedis
) -> None:
    private_redis.stop()

    with pytest.raises(ReplayStoreUnavailable) as caught:
        verify(binance_key)

    assert (caught.value.status, caught.value.code, caught.value.binance_code) == (
        503,
        "service_unavailable",
        -1001,
    )
    assert_untouched(binance_key)
    response = signed_form_post(
        binance_key, BINANCE_SECRET, f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"
    )
    assert response.status_code == 503
    assert response.data["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert_untouched(binance_key)


# --- duplicated parameters: the signature and the view must read the same request

DUPLICATE = "Duplicate values for a parameter detected."


@pytest.mark.parametrize(
    ("_case", "raw_query", "raw_body", "name"),
    [
        ("in the query", f"{BINANCE_PAYLOAD}&price=0.2", "", "price"),
        ("in the body", "", f"{BINANCE_PAYLOAD}&quantity=9", "quantity"),
        ("one in each", "quantity=9", BINANCE_PAYLOAD, "quantity"),
        ("one in each, timestamp", "timestamp=1499827319000", BINANCE_PAYLOAD, "timestamp"),
        ("same name, %-encoded", "", f"{BINANCE_PAYLOAD}&quantit%79=9", "quantity"),
        ("same name, + for space", "", "time+in=1&time%20in=2&timestamp=1", "time in"),
        ("signature under an encoded name", "", f"{BINANCE_PAYLOAD}&signatur%65=ab", "signature"),
    ],
)
@pytest.mark.django_db
def test_duplicated_parameter_is_refused_and_changes_nothing(
    binance_key: ApiKey,
    replay_store: redis.Redis,
    _case: str,
    raw_query: str,
    raw_body: str,
    name: str,
) -> None:
    # Correctly signed: the duplicate is the only fault.
    signature = f"signature={sign(BINANCE_SECRET, raw_query + raw_body)}"
    if raw_body:
        raw_body = f"{raw_body}&{signature}"
    else:
        raw_query = f"{raw_query}&{signature}"

    with pytest.raises(DuplicateParameter) as caught:
        verify(binance_key, raw_query=raw_query, raw_body=raw_body.encode())

    assert (caught.value.code, caught.value.field, caught.value.status) == (
        "duplicate_parameter",
        name,
        400,
    )
    assert (caught.value.binance_code, caught.value.binance_message) == (-1101, DUPLICATE)
    assert_untouched(binance_key)
    assert nonces(replay_store) == []


def test_empty_pairs_are_not_duplicates() -> None:
    signed = split_signed_payload("symbol=A&&side=BUY", b"&&quantity=1&signature=ab")

    assert signed.payload == b"symbol=A&&side=BUY&&quantity=1"


@pytest.mark.django_db
def test_auth_class_refuses_a_duplicate_before_the_view_runs(
    binance_key: ApiKey, replay_store: redis.Redis
) -> None:
    query = "quantity=9"
    params = f"symbol=BTCUSDT&side=BUY&quantity=1&timestamp={int(time.time() * 1000)}"
    request = APIRequestFactory().post(
        f"/echo?{query}",
        data=f"{params}&signature={sign(BINANCE_SECRET, query + params)}",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_MBX_APIKEY=binance_key.key,
    )

    response = EchoApi.as_view()(request)

    assert response.status_code == 400
    assert response.data == {
        "code": "duplicate_parameter",
        "message": DUPLICATE,
        "field": "quantity",
    }
    assert_untouched(binance_key)
    assert nonces(replay_store) == []
