"""Signed API requests: Binance's payload rule, timing window, replay, key state, scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.models import ApiKey, AuditLog, User
from accounts.services.apikeys import create_api_key, encrypt_secret
from accounts.signing import (
    ApiKeyExpired,
    ApiKeyFormatInvalid,
    ApiKeyInvalid,
    ApiKeyRevoked,
    IpNotAllowed,
    RecvWindowTooLarge,
    ReplayedRequest,
    ScopeMissing,
    SignatureInvalid,
    SignatureMissing,
    SignedRequestError,
    TimestampOutsideRecvWindow,
    check_hmac_signature,
    split_signed_payload,
    verify_signed_request,
)
from exchange.api.auth import ApiKeySignatureAuthentication

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
        ("extra parameter", f"{BINANCE_PAYLOAD}&quantity=9&signature={BINANCE_SIGNATURE}"),
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
