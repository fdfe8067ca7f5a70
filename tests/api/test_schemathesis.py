"""Schemathesis over the live uvicorn: every documented operation of v1 and v3, fed
generated input that fits the schema, answers a documented status (never a 5xx) with a body
of the documented shape and content type; fed input the schema forbids (negative mode), it
still answers a documented status with the API's JSON, never a 5xx.

Public operations go unauthenticated; signed ones carry a valid key and a signature made
for the exact bytes sent (timestamp, recvWindow, HMAC over query string + body, as
tests/api/conftest.SignedClient signs). Half of the cases name a real market (BTCUSDT /
BTC-USDT) so they get past the symbol check into the handlers, and there the order-placing
operations send a limit order the market accepts. The rate limiter's Redis
keys are deleted between operations, so the fuzzing does not end in 418s for everything.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Asset, Balance, User
from exchange.api import ratelimit
from markets.models import Market
from tests.api.conftest import call, make_key
from tests.conftest import fund
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 20  # per operation: ~50 operations in about a minute and a half on two cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
MAX_NEGATIVE_EXAMPLES = 8  # per operation, of input the schema forbids
SIGNED = "SignedRequest"
FAILURE_CHARS = 1500  # of each operation's failure report: the title, the body, the curl
COMPAT_ORDER_OPERATIONS = frozenset(
    ("POST", path)
    for path in ("/api/v3/order", "/api/v3/order/test", "/api/v3/order/cancelReplace")
)
KEPT_ORDER_NAMES = frozenset(
    {"symbol", "side", "newOrderRespType", "selfTradePreventionMode", "cancelReplaceMode"}
    | {"cancelOrderId", "cancelOrigClientOrderId", "computeCommissionRates"}
)
LIMIT_ORDER = {
    "type": "LIMIT",
    "timeInForce": "GTC",
    "price": "49000.00",  # inside the ±10% band around 50,000
    "quantity": "0.00100",
    "newOrderRespType": "ACK",
}
V1_LIMIT_ORDER = {
    "market": "BTC-USDT",
    "side": "buy",
    "type": "limit",
    "time_in_force": "gtc",
    "price": "49000.00",  # inside the ±10% band around 50,000
    "quantity": "0.00100",
}


class HmacSigner(requests.auth.AuthBase):
    """Signs the prepared request as sent: appends timestamp, recvWindow and signature to
    the query string, the HMAC over the query string followed by the body."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        stamp = urlencode({"timestamp": int(time.time() * 1000), "recvWindow": 10000})
        query = f"{parts.query}&{stamp}" if parts.query else stamp
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        assert isinstance(raw, bytes), type(raw)  # requests has encoded forms and JSON
        signature = hmac.new(self.secret.encode(), query.encode() + raw, hashlib.sha256)
        query += f"&signature={signature.hexdigest()}"
        request.url = urlunsplit(parts._replace(query=query))
        request.headers["X-MBX-APIKEY"] = self.key
        return request


def _signed_operations(raw: dict[str, Any]) -> set[tuple[str, str]]:
    """(path, METHOD) of every operation whose only ways in are signed or session auth."""
    out = set()
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security") or [{}]
            if {} not in security and any(SIGNED in s for s in security):
                out.add((path, method.upper()))
    return out


def _with_market(case: Any, *, compat: bool) -> None:
    """Point the case at the listed market where the operation names one."""
    symbol = "BTCUSDT" if compat else "BTC-USDT"
    names = {p.name for p in case.operation.query} if case.operation.query else set()
    query = dict(case.query or {})
    for name in ("symbol", "market"):
        if name in names:
            query[name] = symbol
    if query:
        case.query = query
    if isinstance(case.body, dict):
        body = dict(case.body)
        for name in ("symbol", "market"):
            if name in body:
                body[name] = symbol
        place = (case.operation.method.upper(), case.operation.path)
        if place in COMPAT_ORDER_OPERATIONS:
            # A limit order the market accepts, ACK (each RESULT/FULL answer waits for an
            # engine not running here). Generated extra names, which the API ignores, are
            # dropped: given twice they are refused as duplicates before anything else.
            body = {k: v for k, v in body.items() if k in KEPT_ORDER_NAMES} | LIMIT_ORDER
        elif place == ("POST", "/api/v1/orders"):
            body = V1_LIMIT_ORDER
        case.body = body
    if case.path_parameters and "symbol" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "symbol": symbol}


def _reset_rate_limits(client: redis.Redis) -> None:
    """Each operation starts with fresh rate-limit windows and no ban. Only the limiter's
    keys: flushing the database would also drop the signing layer's replay store, and the
    server then refuses every timestamp from before the flush."""
    keys = list(client.scan_iter(match=f"{ratelimit.KEY_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


def _fuzz(
    operation: Any,
    *,
    base_url: str,
    session: requests.Session,
    auth: Any,
    seen: Counter[int],
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> None:
    """Run generated cases of one operation through the checks; count the statuses
    answered in `seen`. Negative cases (input the schema forbids) must still never be a
    5xx and must answer with the API's JSON, in a documented status."""
    compat = not operation.path.startswith("/api/v1/")
    positive = mode == GenerationMode.POSITIVE
    checks = CHECKS if positive else NEGATIVE_CHECKS

    @given(case=operation.as_strategy(generation_mode=mode), real_market=st.booleans())
    @settings(
        max_examples=MAX_EXAMPLES if positive else MAX_NEGATIVE_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, real_market: bool) -> None:
        if real_market and positive:  # a negative case stays invalid
            _with_market(case, compat=compat)
        response = case.call(base_url=base_url, session=session, auth=auth, timeout=30)
        seen[response.status_code] += 1
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if positive:
            raise
        # An operation without parameters or body has no invalid input to generate.


@pytest.mark.slow
def test_every_operation_answers_as_documented(
    live_api: str,
    redis_db: redis.Redis,
    alice: User,
    assets: dict[str, Asset],
    btc_usdt: Market,  # noqa: F811
) -> None:
    fund(alice, assets["USDT"], "100000")
    fund(alice, assets["BTC"], "10")
    key, secret = make_key(alice, trade=True)
    raw = call(live_api, "GET", "/api/schema/", query="format=json").body
    signed = _signed_operations(raw)
    schema = schemathesis.openapi.from_dict(raw)
    session = requests.Session()
    signer = HmacSigner(key, secret)
    started = time.monotonic()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of our schema loads
        operations.append(result.ok())
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    assert len(operations) >= 45, [op.label for op in operations]

    for operation in operations:
        is_signed = (operation.path, operation.method.upper()) in signed
        _reset_rate_limits(redis_db)

        try:
            _fuzz(
                operation,
                base_url=live_api,
                session=session,
                auth=signer if is_signed else None,
                seen=statuses[operation.label],
            )
            _fuzz(
                operation,
                base_url=live_api,
                session=session,
                auth=signer if is_signed else None,
                seen=statuses[f"{operation.label} (negative)"],
                mode=GenerationMode.NEGATIVE,
            )
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, not only the first
            failures.append(f"{operation.label}: {str(exc)[:FAILURE_CHARS]}")

    assert not failures, "\n\n".join(failures)
    print({label: dict(seen) for label, seen in statuses.items()})  # noqa: T201  (-s shows it)
    # The signing works: signed reads reached their handlers, not only the 401 path.
    for label in ("GET /api/v3/account", "GET /api/v1/balances", "GET /api/v3/openOrders"):
        assert statuses[label][200] > 0, (label, statuses[label])
    elapsed = time.monotonic() - started
    assert elapsed < 180, f"{elapsed:.0f} s"
    # The fuzzing moved no money it should not have: balances never go negative.
    assert Balance.objects.filter(user=alice, available__lt=Decimal(0)).exists() is False


@pytest.mark.parametrize(
    ("_case", "method", "path", "code"),
    [
        ("v1 unknown path", "GET", "/api/v1/nosuch", "not_found"),
        ("v1 unknown path, POST", "POST", "/api/v1/nosuch/deeper", "not_found"),
        ("v1 client id with a newline", "GET", "/api/v1/orders/by-client-id/a%0Ab", "not_found"),
        ("v1 symbol with an encoded slash", "GET", "/api/v1/markets/BTC%2FUSDT", "not_found"),
        ("v1 trailing slash", "DELETE", "/api/v1/orders/", "not_found"),
        ("v3 unknown path", "GET", "/api/v3/nosuch", -1020),
        ("v3 unknown path, DELETE", "DELETE", "/api/v3/a/b", -1020),
        ("v3 path with a newline", "GET", "/api/v3/ping%0A", -1020),
    ],
)
def test_unrouted_api_paths_answer_json(
    live_api: str, _case: str, method: str, path: str, code: object
) -> None:
    """No path under /api/v1/ or /api/v3/ gets Django's HTML 404: each API's own error body."""
    answer = call(live_api, method, path)
    assert answer.status == 404
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.body
    assert answer.code == code
