"""`Idempotency-Key` for the v1 POSTs that move money (orders, order batches, withdrawals).

The header is optional; when sent (1-255 printable ASCII characters, no spaces), the first
request with a key claims it by inserting an IdempotencyRecord (unique per user and key,
committed before the request runs), runs, and stores its answer. Then:

- a repeat with the same fingerprint gets the stored answer (status and body) again, with
  `Idempotent-Replayed: true`, and nothing runs a second time;
- the same key with another fingerprint is refused: 422 `idempotency_key_reused`;
- a repeat while the first is still running is refused: 409 `idempotency_key_in_progress`
  (the unique insert is the lock: of concurrent duplicates exactly one runs).

Fingerprint: sha256 over the method, the path and the body. A form body is taken without
its `timestamp`, `recvWindow` and `signature` pairs: a signed client must sign every retry
afresh (a verbatim replay is refused by the signing layer), and those are the only pairs
that change; a JSON body (signed in the query string) is taken byte for byte.

A request refused with a DomainError (or DRF's own refusal of a malformed body) changed
nothing (the services guarantee it), so its claim is dropped and the key may be used again.
An unexpected failure stores a 500 "outcome unknown" answer instead: the request may have
committed, so running it again could move money twice; the client checks its orders or
withdrawals. Records older than
IDEMPOTENCY_KEY_TTL_HOURS no longer count: a key that old is claimed afresh.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from accounts.models import IdempotencyRecord, User
from exchange.errors import DomainError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_SIGNING_PAIRS = frozenset({b"timestamp", b"recvWindow", b"signature"})
UNKNOWN_OUTCOME = {
    "code": "outcome_unknown",
    "message": "The request failed after it started; check your orders or withdrawals "
    "before sending it again with a new Idempotency-Key.",
    "field": None,
}


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422


class IdempotencyKeyInProgress(DomainError):
    code = "idempotency_key_in_progress"
    status = 409


def fingerprint(request: Request) -> str:
    """sha256 hex of method, path and body (a form body without its signing pairs)."""
    raw = request._request.body  # cached by Django: the signature check read it first
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        raw = b"&".join(
            pair for pair in raw.split(b"&") if pair.partition(b"=")[0] not in _SIGNING_PAIRS
        )
    digest = hashlib.sha256()
    for part in ((request.method or "").encode(), request.path.encode(), raw):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def idempotent(request: Request, *, user: User, run: Callable[[], Response]) -> Response:
    """Answer `request` by `run()`, at most once per Idempotency-Key (module docstring)."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    if not _KEY.fullmatch(key):
        raise IdempotencyKeyInvalid(
            f"{HEADER} must be 1-255 printable ASCII characters without spaces.", field=HEADER
        )
    print_ = fingerprint(request)
    record, stored = _claim(user=user, key=key, print_=print_)
    if stored is not None:
        replay = Response(stored.response_body, status=stored.status_code)
        replay[REPLAYED_HEADER] = "true"
        return replay
    try:
        response = run()
    except (DomainError, APIException):
        # A refusal (a DomainError, or DRF's own: a malformed body, a field missing) comes
        # before anything is written: nothing changed, so the key is free again.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    except Exception:
        _store(record, status_code=500, body=UNKNOWN_OUTCOME)
        raise
    _store(record, status_code=response.status_code, body=response.data)
    return response


def _claim(
    *, user: User, key: str, print_: str, attempts: int = 3
) -> tuple[IdempotencyRecord, IdempotencyRecord | None]:
    """(our new record, None) when the key is ours now; (_, the stored one) for a repeat."""
    for _ in range(attempts):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    user=user, key=key, fingerprint=print_
                ), None
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # dropped by a refused first request meanwhile: claim again
        cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        if existing.created_at < cutoff:
            IdempotencyRecord.objects.filter(pk=existing.pk, created_at__lt=cutoff).delete()
            continue
        if existing.fingerprint != print_:
            raise IdempotencyKeyReused(
                f"This {HEADER} was used for a different request.", field=HEADER
            )
        if existing.status_code is None:
            raise IdempotencyKeyInProgress(
                f"A request with this {HEADER} is still running; retry in a moment.",
                field=HEADER,
            )
        return existing, existing
    raise IdempotencyKeyInProgress(
        f"A request with this {HEADER} is still running; retry in a moment.", field=HEADER
    )


def _store(record: IdempotencyRecord, *, status_code: int, body: Any) -> None:
    # Any: a serializer's output. Stored as plain JSON (Decimals already strings).
    plain = json.loads(json.dumps(body, cls=JSONEncoder))
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=plain
    )
