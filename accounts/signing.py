"""Verification of signed API requests, Binance style (PARTNER_API.md §1.5).

The signed payload is the raw query string concatenated with the raw body, with the
`signature=` pair taken out of whichever of the two carries it: exactly Binance's
"totalParams", with no separator between query and body. Verification works on the bytes
as received; parsed parameters are never re-encoded (their order and escaping would
differ). HMAC-SHA256 signatures are hex, case-insensitive; Ed25519 signatures are base64,
URL-encoded by ccxt.

Timing (Binance): accept iff `timestamp < server_time + 1000` and
`server_time - timestamp <= recvWindow`; recvWindow defaults to 5000 ms, at most 60000.
Replay: each accepted payload is remembered in Redis for the rest of its window (SET NX),
so a verbatim replay inside the window is refused; outside it the timestamp check is. The
same Lua call keeps a marker of when the store began, so a store that lost its keys
(FLUSHALL, a restart without persistence) refuses every request signed before the loss
instead of accepting it again (`_claim_nonce`).

Parameters: each name may appear once in the query string and body together, otherwise
the request is refused with -1101. The checks here read the first of two values (timestamp,
recvWindow) while Django's QueryDict gives the view the last, so with a duplicate the two
would act on different requests.

The parsing and checking functions are pure; `verify_signed_request` adds the key lookup,
the nonce claim and the `last_used_at` touch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from urllib.parse import unquote, unquote_plus

import redis
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.utils import timezone
from redis.commands.core import Script

from accounts.models import ApiKey, ApiKeyType
from accounts.services.apikeys import SCOPES, decrypt_secret
from exchange.errors import DomainError

logger = logging.getLogger(__name__)

FUTURE_TOLERANCE_MS = 1000  # Binance: timestamp < serverTime + 1000
MICROSECOND_TIMESTAMP = 10**14  # above this a timestamp is in µs (Binance accepts both)
MAX_PAYLOAD_BYTES = 64 * 1024  # order batches are a few KB; anything larger is not ours
LAST_USED_RESOLUTION = timedelta(minutes=1)  # one UPDATE per key per minute, not per request
_API_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{1,64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,20}")
NONCE_KEY_PREFIX = "exchange:signed-request:"
# When (server time, ms) the nonce store began: written by the claim script when missing.
REPLAY_STORE_SINCE_KEY = "exchange:signed-request-store:since"
# A hung Redis must not hang every signed request: fail (503) within this many seconds.
REPLAY_STORE_TIMEOUT_SECONDS = 2.0

# --- errors: a stable `code` for our API, a `binance_code`/`binance_message` for the compat API


class SignedRequestError(DomainError):
    """A signed request was refused. Nothing was changed by the refusal."""

    status = 401
    binance_code = -1022
    binance_message = "Signature for this request is not valid."


class SignatureInvalid(SignedRequestError):
    code = "signature_invalid"


class SignatureMissing(SignedRequestError):
    code = "signature_missing"
    status = 400
    binance_code = -1102
    binance_message = "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."


class TimestampInvalid(SignedRequestError):
    code = "timestamp_invalid"
    status = 400
    binance_code = -1102
    binance_message = "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."


class TimestampOutsideRecvWindow(SignedRequestError):
    code = "timestamp_outside_recv_window"
    status = 400
    binance_code = -1021
    binance_message = "Timestamp for this request is outside of the recvWindow."


class RecvWindowInvalid(SignedRequestError):
    code = "recv_window_invalid"
    status = 400
    binance_code = -1100
    binance_message = "Illegal characters found in parameter 'recvWindow'."


class RecvWindowTooLarge(SignedRequestError):
    code = "recv_window_too_large"
    status = 400
    binance_code = -1131
    binance_message = "recvWindow must be less than 60000"


class ReplayedRequest(SignedRequestError):
    # ccxt maps -1021 to InvalidNonce: the right reaction for a bot is a fresh timestamp.
    code = "replayed_request"
    status = 400
    binance_code = -1021
    binance_message = "This request was already received; sign a new one."


class SignedBeforeReplayStore(TimestampOutsideRecvWindow):
    """Signed before the nonce store began (it lost its keys): it may have been seen.

    The stale-timestamp code, not a code of its own: ccxt maps -1021 to InvalidNonce, a
    NetworkError, which ccxt users and freqtrade retry with a fresh timestamp, and a
    fresh timestamp is exactly what gets through. -1022 (AuthenticationError) would make
    bots stop trading over a server-side loss.
    """


class DuplicateParameter(SignedRequestError):
    code = "duplicate_parameter"
    status = 400
    binance_code = -1101
    binance_message = "Duplicate values for a parameter detected."


class ReplayStoreUnavailable(SignedRequestError):
    # Refusing is the only safe answer without the nonce store (a replay must never pass);
    # 503 and -1001 say "try again", which ccxt and freqtrade do.
    code = "service_unavailable"
    status = 503
    binance_code = -1001
    binance_message = "Internal error; unable to process your request. Please try again."


class ApiKeyInvalid(SignedRequestError):
    code = "api_key_invalid"
    binance_code = -2015
    binance_message = "Invalid API-key, IP, or permissions for action."


class ApiKeyFormatInvalid(ApiKeyInvalid):
    binance_code = -2014
    binance_message = "API-key format invalid."


class ApiKeyRevoked(ApiKeyInvalid):
    code = "api_key_revoked"


class ApiKeyExpired(ApiKeyInvalid):
    code = "api_key_expired"


class IpNotAllowed(ApiKeyInvalid):
    code = "ip_not_allowed"
    status = 403


class ScopeMissing(ApiKeyInvalid):
    code = "scope_missing"
    status = 403


# --- pure parsing and checks


@dataclass(frozen=True)
class SignedPayload:
    """What a request signed: the exact bytes, the signature as sent, and the two
    parameters the server itself reads (query string wins over body, as on Binance)."""

    payload: bytes
    signature: str
    timestamp: str | None
    recv_window: str | None


def split_signed_payload(raw_query: str, raw_body: bytes) -> SignedPayload:
    """Build Binance's totalParams (query + body, minus the `signature` pair).

    Exactly one `signature` pair must be present, in the query or in the body, and every
    other name at most once across both (names compared as Django decodes them). Raises
    SignatureMissing, SignatureInvalid or DuplicateParameter. Pure.
    """
    if len(raw_query) + len(raw_body) > MAX_PAYLOAD_BYTES:
        raise SignatureInvalid("The signed request is too large.")
    try:
        body = raw_body.decode("ascii")
        raw_query.encode("ascii")
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        # Form encoding is ASCII; anything else cannot be the string the client signed.
        raise SignatureInvalid("Signed parameters must be URL-encoded ASCII.") from exc
    query_pairs, query_signatures = _without_signature(raw_query)
    body_pairs, body_signatures = _without_signature(body)
    signatures = query_signatures + body_signatures
    if not signatures or not signatures[0]:
        raise SignatureMissing("The signature parameter is missing.", field="signature")
    if len(signatures) > 1:
        raise SignatureInvalid("Send exactly one signature parameter.", field="signature")
    params = _unique_values(query_pairs + body_pairs, taken=("signature",))
    return SignedPayload(
        payload=("&".join(query_pairs) + "&".join(body_pairs)).encode("ascii"),
        signature=signatures[0],
        timestamp=params.get("timestamp"),
        recv_window=params.get("recvWindow"),
    )


def check_timestamp(*, timestamp: str | None, recv_window: str | None, now_ms: int) -> int:
    """Apply Binance's window rule; return the recvWindow in ms. Pure.

    Raises TimestampInvalid, RecvWindowInvalid, RecvWindowTooLarge or
    TimestampOutsideRecvWindow.
    """
    max_window = settings.API_SIGNATURE_MAX_RECV_WINDOW_MS
    if recv_window is None:
        window = settings.API_SIGNATURE_DEFAULT_RECV_WINDOW_MS
    elif not _DIGITS.fullmatch(recv_window) or int(recv_window) == 0:
        raise RecvWindowInvalid("recvWindow must be a positive integer.", field="recvWindow")
    else:
        window = int(recv_window)
    if window > max_window:
        raise RecvWindowTooLarge(f"recvWindow must be at most {max_window} ms.", field="recvWindow")
    if timestamp is None or not _DIGITS.fullmatch(timestamp):
        raise TimestampInvalid("timestamp must be milliseconds since the epoch.", field="timestamp")
    stamp_ms = _stamp_ms(timestamp)
    if not (stamp_ms < now_ms + FUTURE_TOLERANCE_MS and now_ms - stamp_ms <= window):
        raise TimestampOutsideRecvWindow(
            "Timestamp for this request is outside of the recvWindow.", field="timestamp"
        )
    return window


def _stamp_ms(timestamp: str) -> int:
    stamp = int(timestamp)
    return stamp // 1000 if stamp >= MICROSECOND_TIMESTAMP else stamp


def check_hmac_signature(*, secret: str, payload: bytes, signature: str) -> None:
    """Constant-time check of a hex HMAC-SHA256 signature (any case). Pure."""
    expected = hmac.new(secret.encode("ascii"), payload, hashlib.sha256).hexdigest()
    # The format check leaks nothing about the secret; compare_digest then has no early
    # exit that would reveal how much of a forged signature matches.
    if not _HEX_SIGNATURE.fullmatch(signature) or not hmac.compare_digest(
        expected, signature.lower()
    ):
        raise SignatureInvalid("Signature for this request is not valid.", field="signature")


def check_ed25519_signature(*, public_key_pem: str, payload: bytes, signature: str) -> None:
    """Check a base64 (possibly URL-encoded) Ed25519 signature over the payload. Pure."""
    error = SignatureInvalid("Signature for this request is not valid.", field="signature")
    try:
        raw_signature = base64.b64decode(unquote(signature), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error from exc
    public_key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    if not isinstance(public_key, Ed25519PublicKey):
        raise error
    try:
        public_key.verify(raw_signature, payload)
    except InvalidSignature as exc:
        raise error from exc


def check_ip_allowed(*, allowlist: list[str], remote_ip: str) -> None:
    """An empty allowlist allows every address. Pure."""
    if not allowlist:
        return
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError as exc:
        raise IpNotAllowed("This IP address may not use the key.") from exc
    if not any(address in ipaddress.ip_network(entry, strict=False) for entry in allowlist):
        raise IpNotAllowed("This IP address may not use the key.")


# --- the whole check


def verify_signed_request(
    *,
    api_key: str,
    method: str,
    raw_query: str,
    raw_body: bytes,
    remote_ip: str,
    required_scope: str,
    now_ms: int | None = None,
) -> ApiKey:
    """Authenticate one signed request; return the key (with its user) when it passes.

    Checks in order: key format and existence, active user, revocation, expiry, IP
    allowlist, duplicate parameters, recvWindow and timestamp, signature, scope, then
    claims the request's nonce so a verbatim replay is refused, also after the nonce store
    lost its keys. Raises a SignedRequestError subclass; a refused request writes nothing
    (no last_used_at, no nonce, no audit row; only the replay store's own start marker, if
    it was missing). `method` is not part of Binance's payload; it is accepted for logging
    and future use.
    """
    if required_scope not in SCOPES:
        raise ValueError(f"unknown scope {required_scope!r}")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not _API_KEY_FORMAT.fullmatch(api_key or ""):
        raise ApiKeyFormatInvalid("API-key format invalid.")
    key = ApiKey.objects.select_related("user").filter(key=api_key).first()
    if key is None or not key.user.is_active:
        raise ApiKeyInvalid("Invalid API-key, IP, or permissions for action.")
    _check_key_usable(key=key, remote_ip=remote_ip)

    signed = split_signed_payload(raw_query, raw_body)
    window_ms = check_timestamp(
        timestamp=signed.timestamp, recv_window=signed.recv_window, now_ms=now_ms
    )
    _check_signature(key=key, signed=signed)
    if not getattr(key, f"can_{required_scope}"):
        raise ScopeMissing(f"This key lacks the {required_scope} permission.")
    _claim_nonce(
        key=key,
        payload=signed.payload,
        window_ms=window_ms,
        stamp_ms=_stamp_ms(signed.timestamp or "0"),  # check_timestamp refused a missing one
        now_ms=now_ms,
    )
    _touch_last_used(key)
    logger.debug("signed request accepted", extra={"key_id": key.pk, "method": method})
    return key


def verify_api_key(*, api_key: str, remote_ip: str) -> ApiKey:
    """Authenticate a request that carries only the API key (Binance's USER_STREAM
    endpoints, /api/v3/userDataStream): format, existence, active user, revocation, expiry
    and IP allowlist, as a signed request; no signature, so no scope beyond reading. Raises
    a SignedRequestError subclass and writes nothing."""
    if not _API_KEY_FORMAT.fullmatch(api_key or ""):
        raise ApiKeyFormatInvalid("API-key format invalid.")
    key = ApiKey.objects.select_related("user").filter(key=api_key).first()
    if key is None or not key.user.is_active:
        raise ApiKeyInvalid("Invalid API-key, IP, or permissions for action.")
    _check_key_usable(key=key, remote_ip=remote_ip)
    if not key.can_read:
        raise ScopeMissing("This key lacks the read permission.")
    return key


def _check_key_usable(*, key: ApiKey, remote_ip: str) -> None:
    if key.revoked_at is not None:
        raise ApiKeyRevoked("This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise ApiKeyExpired("This API key has expired.")
    check_ip_allowed(allowlist=list(key.ip_allowlist), remote_ip=remote_ip)


def _check_signature(*, key: ApiKey, signed: SignedPayload) -> None:
    if key.key_type == ApiKeyType.ED25519:
        check_ed25519_signature(
            public_key_pem=key.public_key, payload=signed.payload, signature=signed.signature
        )
        return
    if key.secret_encrypted is None:
        raise SignatureInvalid("Signature for this request is not valid.")
    try:
        secret = decrypt_secret(key.secret_encrypted)
    except InvalidToken as exc:  # wrong API_KEY_ENCRYPTION_KEY: an operator error, not a 500
        logger.error("api key secret cannot be decrypted", extra={"key_id": key.pk})
        raise SignatureInvalid("Signature for this request is not valid.") from exc
    check_hmac_signature(secret=secret, payload=signed.payload, signature=signed.signature)


# One atomic round trip. KEYS: the store's marker, the nonce. ARGV: now, the request's
# timestamp (ms), the nonce's TTL (ms), FUTURE_TOLERANCE_MS. Returns 1 claimed, 0 replay,
# 2 signed before the store began. A request is accepted up to FUTURE_TOLERANCE_MS before
# its timestamp, so one stamped before marker + tolerance may have been accepted before
# the store lost its keys (its nonce with them): refused. One stamped later cannot have
# been, and its nonce, if seen, is in this store. The marker holds the API server's time
# (the clock the timestamp rule uses), so API servers' clocks must agree (NTP).
_CLAIM_NONCE_SCRIPT = """
local since = tonumber(redis.call('GET', KEYS[1]))
if since == nil then
  since = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], ARGV[1])
end
if tonumber(ARGV[2]) < since + tonumber(ARGV[4]) then
  return 2
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  return 1
end
return 0
"""
_CLAIMED, _REPLAYED = 1, 0


def _claim_nonce(
    *, key: ApiKey, payload: bytes, window_ms: int, stamp_ms: int, now_ms: int
) -> None:
    # Keyed on the payload, not the signature: every spelling of the same signature (hex
    # case, base64 escaping) is the same request. A request can be accepted from
    # timestamp - 1000 ms to timestamp + window, so remembering it for window + 1 s covers
    # every moment it could be replayed.
    digest = hashlib.sha256(key.key.encode("ascii") + b"\n" + payload).hexdigest()
    try:
        outcome = _claim_script()(
            keys=[REPLAY_STORE_SINCE_KEY, f"{NONCE_KEY_PREFIX}{digest}"],
            args=[now_ms, stamp_ms, window_ms + FUTURE_TOLERANCE_MS, FUTURE_TOLERANCE_MS],
        )
    except redis.RedisError as exc:
        logger.warning("replay store unavailable; signed request refused", exc_info=True)
        raise ReplayStoreUnavailable(
            "The service is temporarily unavailable; please try again."
        ) from exc
    if outcome == _CLAIMED:
        return
    if outcome == _REPLAYED:
        raise ReplayedRequest("This request was already received; sign a new one.")
    raise SignedBeforeReplayStore(
        "This request was signed before the server's replay store restarted; "
        "sign it again with a fresh timestamp.",
        field="timestamp",
    )


def _touch_last_used(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REPLAY_STORE_TIMEOUT_SECONDS,
        socket_timeout=REPLAY_STORE_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=1)
def _claim_script() -> Script:
    # EVALSHA, and EVAL again after a restart emptied the server's script cache.
    return _redis().register_script(_CLAIM_NONCE_SCRIPT)


def _without_signature(raw: str) -> tuple[list[str], list[str]]:
    """Split raw `a=1&b=2` into its pairs minus `signature`, and the signature values."""
    pairs: list[str] = []
    signatures: list[str] = []
    for pair in raw.split("&") if raw else []:
        name, _sep, value = pair.partition("=")
        if name == "signature":
            signatures.append(value)
        else:
            pairs.append(pair)
    return pairs, signatures


def _unique_values(pairs: list[str], *, taken: tuple[str, ...]) -> dict[str, str]:
    """The parameters as a dict; DuplicateParameter when a name appears twice.

    Names are decoded as Django's QueryDict decodes them (`+` is a space, %-escapes), so
    `qty` and `q%74y` are one name; empty pairs (`a=1&&b=2`) are skipped, as Django does.
    `taken` names are already present (the signature, split off by its raw name).
    """
    values: dict[str, str] = {}
    for pair in pairs:
        if not pair:
            continue
        raw_name, _sep, value = pair.partition("=")
        name = unquote_plus(raw_name)
        if name in values or name in taken:
            raise DuplicateParameter("Duplicate values for a parameter detected.", field=name[:64])
        values[name] = unquote(value)
    return values
