"""What drf-spectacular cannot infer about the APIs: the signed-request security scheme, the
error responses every operation can give, and (in binance/openapi.py, v1/openapi.py) the
parameters and bodies of views that build their answers by hand.

Imported by exchange/urls.py so all of it is registered before the schema is built. The
annotations are applied to the view classes from outside their modules (the views stay
plain DRF), and `document_errors` runs over the mounted routes, so an endpoint added
later gets the common errors without anyone remembering to list them.

Common errors (added where an operation's own annotation does not already say them):

* 400 bad input (always), 415 a body that is not a form or JSON (POST/PUT/PATCH),
* 401 / 403 a refused key, signature or scope (views that authenticate),
* 418 / 429 the rate limiter (ban, limit; Retry-After), 503 a store is down (Retry-After).

405 is not listed per operation: it is the answer to a method the path does not document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import URLPattern, URLResolver
from drf_spectacular.drainage import isolate_view_method
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_class
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

BINANCE_ERROR = inline_serializer(
    "BinanceError",
    {
        "code": serializers.IntegerField(help_text="Binance's negative error code, e.g. -1121"),
        "msg": serializers.CharField(),
    },
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class SignedRequestScheme(OpenApiAuthenticationExtension):
    """X-MBX-APIKEY plus a `signature` parameter over the raw query string and body."""

    target_class = "exchange.api.auth.ApiKeySignatureAuthentication"
    name = "SignedRequest"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-MBX-APIKEY",
            "description": (
                "The API key. Signed endpoints also need `timestamp` (ms), optional "
                "`recvWindow` (<= 60000) and `signature`: HMAC-SHA256 hex of the query string "
                "concatenated with the body (without the signature pair), or an Ed25519 "
                "signature (base64) for Ed25519 keys."
            ),
        }


class ApiKeyHeaderScheme(OpenApiAuthenticationExtension):
    """X-MBX-APIKEY alone (Binance's USER_STREAM endpoints: /api/v3/userDataStream)."""

    target_class = "exchange.api.auth.ApiKeyHeaderAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-MBX-APIKEY",
            "description": "The API key, without a signature (listenKey endpoints).",
        }


def compat_errors(*, signed: bool, body: bool) -> dict[int, OpenApiResponse]:
    """The errors any compat (/api/v3, /sapi) operation can answer, Binance's body."""

    def error(description: str) -> OpenApiResponse:
        return OpenApiResponse(BINANCE_ERROR, description=description)

    out = {
        400: error(
            "-1100 illegal characters / out of range, -1101 duplicate parameter, "
            "-1102 mandatory parameter missing, -1121 invalid symbol (and the endpoint's own)."
        ),
    }
    if signed:
        out[401] = error(
            "-2014 API-key format invalid, -2015 invalid key/IP/permission, -1021 timestamp "
            "outside recvWindow, -1022 signature invalid."
        )
        out[403] = error("-2015: the key lacks the permission (scope) or the IP is not allowed.")
    if body:
        out[415] = error("-1000: the body is not application/x-www-form-urlencoded.")
    out[418] = error("-1003: IP banned for continuing after 429s; see Retry-After.")
    out[429] = error("-1003: request weight or order rate limit exceeded; see Retry-After.")
    out[503] = error("-1007: a backend store is unavailable; execution status unknown.")
    return out


def v1_errors(*, body: bool) -> dict[int, OpenApiResponse]:
    """The errors any v1 operation can answer, {code, message, field}."""
    # Imported here: v1.serializers imports the v1 views' modules' dependencies.
    from exchange.api.v1.serializers import ErrorSerializer

    def error(description: str) -> OpenApiResponse:
        return OpenApiResponse(ErrorSerializer, description=description)

    out = {
        400: error("Bad input; nothing changed."),
        401: error("No valid key signature or session (or the key's signature was refused)."),
        403: error("Scope, CSRF or IP refused."),
    }
    if body:
        out[415] = error("The body is neither application/json nor a form.")
    out[418] = error("IP banned for continuing after 429s; see Retry-After.")
    out[429] = error("Request weight or order rate limit exceeded; see Retry-After.")
    out[503] = error("A backend store is unavailable; retry after Retry-After.")
    return out


class _CommonErrors:
    """Mixed in front of an operation's schema class: its responses plus the common errors
    it does not state itself (its own descriptions win)."""

    audience = "compat"
    method: str
    view: Any

    def get_response_serializers(self) -> Any:
        responses = super().get_response_serializers()  # type: ignore[misc]
        if not isinstance(responses, dict):
            return responses
        body = self.method in BODY_METHODS
        if self.audience == "compat":
            signed = bool(getattr(self.view, "authentication_classes", ()))
            common = compat_errors(signed=signed, body=body)
        else:
            common = v1_errors(body=body)
        given = {str(code) for code in responses}
        return {**responses, **{c: r for c, r in common.items() if str(c) not in given}}


def document_errors(
    patterns: Iterable[URLPattern | URLResolver], *, audience: str, skip: Iterable[type] = ()
) -> None:
    """Give every method of every view routed by `patterns` the common errors."""
    skipped = set(skip)
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            document_errors(pattern.url_patterns, audience=audience, skip=skipped)
            continue
        view_class = getattr(pattern.callback, "cls", None)
        if view_class is None or view_class in skipped:
            continue
        for name in ("get", "post", "put", "patch", "delete"):
            if not hasattr(view_class, name):
                continue
            method = isolate_view_method(view_class, name)
            kwargs = getattr(method, "kwargs", None)
            if kwargs is None:
                kwargs = method.kwargs = {}
            base = kwargs.get("schema") or get_class(view_class.schema)
            if not (isinstance(base, type) and issubclass(base, AutoSchema)):
                base = AutoSchema
            if issubclass(base, _CommonErrors):
                continue  # already done (the urls module imported twice)
            kwargs["schema"] = type(
                f"{view_class.__name__}{name.title()}Errors",
                (_CommonErrors, base),
                {"audience": audience},
            )


def _register() -> None:
    # The annotations first (they set each operation's own responses), then the errors.
    from exchange.api.binance import openapi as _compat
    from exchange.api.binance import public
    from exchange.api.binance import urls as compat_urls
    from exchange.api.v1 import openapi as _v1  # noqa: F401
    from exchange.api.v1 import urls as v1_urls

    document_errors(
        [*compat_urls.urlpatterns, *public.root_urls],
        audience="compat",
        skip=_compat.EXCLUDED_VIEWS,
    )
    document_errors(v1_urls.urlpatterns, audience="v1")


_register()
