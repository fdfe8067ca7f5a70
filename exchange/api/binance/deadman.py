"""The dead-man's switch: POST /api/v3/countdownCancelAll (Binance futures' shape).

`symbol` + `countdownTime` (ms; 0 disarms) arm, renew or disarm the calling key's switch on
that market; when it lapses every open order of the key's account there is cancelled
(trading.deadman, docs/api/dead-mans-switch.md). Binance answers `countdownTime` as a
string; so do we.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from exchange.api.binance.base import SignedView, binance_symbol, params, resolve_symbol, text
from exchange.api.binance.errors import BinanceError, illegal
from trading.deadman import LEGAL_COUNTDOWNS, MAX_COUNTDOWN_MS, is_valid_countdown, set_countdown

_MAX_DIGITS = 9  # MAX_COUNTDOWN_MS has 8; anything longer is out of range anyway
_ERROR = inline_serializer(
    "CountdownCancelAllError",
    {"code": serializers.IntegerField(), "msg": serializers.CharField()},
)


class CountdownCancelAllApi(SignedView):
    """Arm/renew (countdownTime > 0) or disarm (0) the key's switch on `symbol`."""

    required_scope = "trade"
    weight = 10  # Binance futures' weight for this endpoint

    @extend_schema(
        operation_id="countdownCancelAll",
        request={
            "application/x-www-form-urlencoded": inline_serializer(
                "CountdownCancelAll",
                {
                    "symbol": serializers.CharField(help_text="e.g. BTCUSDT"),
                    "countdownTime": serializers.IntegerField(
                        min_value=0,
                        max_value=MAX_COUNTDOWN_MS,
                        help_text=f"milliseconds: {LEGAL_COUNTDOWNS} (0 disarms)",
                    ),
                },
            )
        },
        responses={
            200: inline_serializer(
                "CountdownCancelAllResponse",
                {"symbol": serializers.CharField(), "countdownTime": serializers.CharField()},
            ),
            400: OpenApiResponse(_ERROR, description="-1100, -1101, -1102, -1121"),
            401: OpenApiResponse(_ERROR, description="-2014, -1022: no key, bad signature"),
            403: OpenApiResponse(_ERROR, description="-2015: the key lacks the trade permission"),
            418: OpenApiResponse(_ERROR, description="-1003: banned after ignoring 429s"),
            429: OpenApiResponse(_ERROR, description="-1003: rate limit; see Retry-After"),
        },
    )
    def post(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(values.get("symbol"))
        countdown_ms = _countdown(text(values, "countdownTime", required=True) or "")
        if not isinstance(request.auth, ApiKey):  # unreachable: SignedView authenticates keys
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        set_countdown(api_key=request.auth, market=market, countdown_ms=countdown_ms)
        return Response({"symbol": binance_symbol(market), "countdownTime": str(countdown_ms)})


def _countdown(raw: str) -> int:
    # ASCII digits only: no sign, exponent, decimals, spaces, underscores or other scripts.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS):
        raise illegal("countdownTime", LEGAL_COUNTDOWNS)
    value = int(raw)
    if not is_valid_countdown(value):
        raise illegal("countdownTime", LEGAL_COUNTDOWNS)
    return value


urls: list[URLPattern] = [
    path(
        "countdownCancelAll", CountdownCancelAllApi.as_view(), name="binance-countdown-cancel-all"
    ),
]
