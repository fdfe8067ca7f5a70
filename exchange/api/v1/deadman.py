"""The dead-man's switch in the v1 API: `GET|POST /api/v1/cancel-countdowns`.

POST `{"market": "BTC-USDT", "countdown_ms": 60000}` arms or renews the calling key's
switch on that market (0 disarms); GET lists the key's switches. A switch belongs to an API
key (trading.deadman), so both need a signed request; a web session gets 403
`api_key_required`. The same service as the compat `POST /api/v3/countdownCancelAll`.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from exchange.api.v1.base import ApiView, StrictCharField, body, ms
from exchange.api.v1.serializers import ErrorSerializer
from exchange.errors import PermissionDeniedError
from markets.selectors import get_market
from trading.deadman import LEGAL_COUNTDOWNS, is_valid_countdown, list_switches, set_countdown
from trading.models import DeadmanSwitch


@extend_schema_field(OpenApiTypes.INT)
class CountdownField(serializers.Field):
    """Milliseconds, 0 or within the switch's range: a JSON integer or a digits-only string."""

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 9:
            data = int(data)
        # bool is an int subclass: true/false are not milliseconds.
        if isinstance(data, bool) or not isinstance(data, int) or not is_valid_countdown(data):
            raise serializers.ValidationError(
                f"countdown_ms must be a whole number of milliseconds: {LEGAL_COUNTDOWNS}.",
                code="countdown_invalid",
            )
        return data

    def to_representation(self, value: int) -> int:
        return value


class SwitchSerializer(serializers.Serializer):
    market = serializers.CharField(source="market.symbol")
    countdown_ms = serializers.IntegerField()
    armed = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    fired_at = serializers.SerializerMethodField()
    fired_orders = serializers.IntegerField()

    def get_armed(self, switch: DeadmanSwitch) -> bool:
        return switch.expires_at is not None

    def get_expires_at(self, switch: DeadmanSwitch) -> int | None:
        return ms(switch.expires_at)

    def get_fired_at(self, switch: DeadmanSwitch) -> int | None:
        return ms(switch.fired_at)


class CancelCountdownsApi(ApiView):
    """The calling key's dead-man's switches: list (scope read), arm/renew/disarm (trade)."""

    class InputSerializer(serializers.Serializer):
        market = StrictCharField(max_length=40)
        countdown_ms = CountdownField()

    @extend_schema(
        responses={
            200: SwitchSerializer(many=True),
            401: ErrorSerializer,
            403: OpenApiResponse(ErrorSerializer, description="not a signed API-key request"),
            429: OpenApiResponse(ErrorSerializer, description="rate limited; see Retry-After"),
        }
    )
    def get(self, request: Request) -> Response:
        switches = list_switches(api_key=_api_key(request))
        return Response(SwitchSerializer(switches, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: SwitchSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="no such market"),
            429: OpenApiResponse(ErrorSerializer, description="rate limited; see Retry-After"),
        },
    )
    def post(self, request: Request) -> Response:
        api_key = _api_key(request)
        payload = self.InputSerializer(data=body(request))
        payload.is_valid(raise_exception=True)
        data: dict[str, Any] = payload.validated_data  # Any: validated serializer values
        market = get_market(symbol=data["market"])
        switch = set_countdown(api_key=api_key, market=market, countdown_ms=data["countdown_ms"])
        if switch is None:  # disarming a switch that never existed
            return Response(
                {
                    "market": market.symbol,
                    "countdown_ms": 0,
                    "armed": False,
                    "expires_at": None,
                    "fired_at": None,
                    "fired_orders": 0,
                }
            )
        return Response(SwitchSerializer(switch).data)


def _api_key(request: Request) -> ApiKey:
    if not isinstance(request.auth, ApiKey):
        raise PermissionDeniedError(
            "A dead-man's switch belongs to an API key: sign this request with one.",
            code="api_key_required",
        )
    return request.auth


urls: list[URLPattern] = [
    path("cancel-countdowns", CancelCountdownsApi.as_view(), name="v1-cancel-countdowns"),
]
