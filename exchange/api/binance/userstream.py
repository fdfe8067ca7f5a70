"""The user data stream's listenKey: POST (create or return), PUT (keepalive), DELETE.

Binance's USER_STREAM endpoints: the API key in X-MBX-APIKEY, no signature. A key lives
60 minutes after its last keepalive (exchange.ws.listenkeys); the stream itself is
`/ws/<listenKey>` on the same host (docs/api/streams.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from exchange.api.auth import ApiKeyHeaderAuthentication
from exchange.api.binance.base import BinanceView, params, text
from exchange.api.binance.errors import BinanceError
from exchange.ws import listenkeys

_ERROR = inline_serializer(
    "UserDataStreamError", {"code": serializers.IntegerField(), "msg": serializers.CharField()}
)
_ERRORS = {
    400: OpenApiResponse(_ERROR, description="-1102 listenKey missing, -1125 unknown listenKey"),
    401: OpenApiResponse(_ERROR, description="-2014, -2015: no key, or an unknown one"),
    418: OpenApiResponse(_ERROR, description="-1003: banned after ignoring 429s"),
    429: OpenApiResponse(_ERROR, description="-1003: rate limit; see Retry-After"),
}
_KEY_BODY = {
    "application/x-www-form-urlencoded": inline_serializer(
        "ListenKeyParameter", {"listenKey": serializers.CharField()}
    )
}
_UNKNOWN = "This listenKey does not exist."


class UserDataStreamApi(BinanceView):
    authentication_classes: Sequence[Any] = (ApiKeyHeaderAuthentication,)
    permission_classes: Sequence[Any] = (IsAuthenticated,)
    weight = 2

    def _key(self, request: Request) -> ApiKey:
        if not isinstance(request.auth, ApiKey):  # unreachable: the authenticator sets it
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return request.auth

    def _listen_key(self, request: Request) -> str:
        value = text(params(request), "listenKey", required=True) or ""
        if not listenkeys.looks_like_key(value):
            raise BinanceError(-1125, _UNKNOWN)
        return value

    @extend_schema(
        operation_id="createListenKey",
        request=None,
        responses={
            200: inline_serializer("ListenKey", {"listenKey": serializers.CharField()}),
            **_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        key = self._key(request)
        params(request)  # refuses duplicates and oversized values like every endpoint
        return Response({"listenKey": listenkeys.create(user_id=key.user_id, api_key_id=key.pk)})

    @extend_schema(
        operation_id="keepaliveListenKey",
        request=_KEY_BODY,
        responses={200: inline_serializer("ListenKeyKept", {}), **_ERRORS},
    )
    def put(self, request: Request) -> Response:
        key = self._key(request)
        if not listenkeys.keepalive(listen_key=self._listen_key(request), api_key_id=key.pk):
            raise BinanceError(-1125, _UNKNOWN)
        return Response({})

    @extend_schema(
        operation_id="closeListenKey",
        request=_KEY_BODY,
        responses={200: inline_serializer("ListenKeyClosed", {}), **_ERRORS},
    )
    def delete(self, request: Request) -> Response:
        key = self._key(request)
        if not listenkeys.delete(listen_key=self._listen_key(request), api_key_id=key.pk):
            raise BinanceError(-1125, _UNKNOWN)
        return Response({})


urls: list[URLPattern] = [
    path("userDataStream", UserDataStreamApi.as_view(), name="binance-user-data-stream"),
]
