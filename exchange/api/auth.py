"""DRF authentication for partner API keys: Binance-style signed requests (X-MBX-APIKEY).

A view declares the scope it needs with `required_scope = "read" | "trade" | "withdraw"`;
without it, safe methods need "read" and everything else "trade". Withdrawal views must
say "withdraw" explicitly.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.signing import (
    SignatureInvalid,
    SignedRequestError,
    verify_api_key,
    verify_signed_request,
)
from exchange.errors import DomainError

API_KEY_HEADER = "HTTP_X_MBX_APIKEY"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignedRequestRejected(exceptions.AuthenticationFailed, DomainError):
    """A refused signed request, in a shape both DRF and our error handler understand.

    DRF only resets `request.user` for APIException subclasses, and our handler renders
    DomainError as {code, message, field}; the compat handler reads `binance_code`.
    """

    def __init__(self, error: SignedRequestError) -> None:
        exceptions.AuthenticationFailed.__init__(self, detail=error.message, code=error.code)
        DomainError.__init__(self, error.message, field=error.field, code=error.code)
        self.status = self.status_code = error.status
        self.binance_code = error.binance_code
        self.binance_message = error.binance_message


class ApiKeySignatureAuthentication(BaseAuthentication):
    """Authenticates `X-MBX-APIKEY` + `signature` requests; returns (user, ApiKey)."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        api_key = request.META.get(API_KEY_HEADER)
        if api_key is None:
            return None  # not ours: let the next authenticator (or NotAuthenticated) answer
        # The raw body must be read before any parser consumes the stream; Django caches
        # it, and DRF's FormParser then works off that cache.
        try:
            raw_body = request._request.body
        except RequestDataTooBig as exc:  # over DATA_UPLOAD_MAX_MEMORY_SIZE: never ours
            too_large = SignatureInvalid("The signed request is too large.")
            raise SignedRequestRejected(too_large) from exc
        view: Any = (request.parser_context or {}).get("view")  # Any: any APIView subclass
        try:
            key = verify_signed_request(
                api_key=api_key,
                method=request.method or "",
                raw_query=request.META.get("QUERY_STRING", ""),
                raw_body=raw_body,
                remote_ip=request.META.get("REMOTE_ADDR", ""),
                required_scope=_required_scope(view, request.method or ""),
            )
        except SignedRequestError as exc:
            raise SignedRequestRejected(exc) from exc
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return "X-MBX-APIKEY"


class ApiKeyHeaderAuthentication(BaseAuthentication):
    """Authenticates by `X-MBX-APIKEY` alone (Binance's USER_STREAM security type)."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        api_key = request.META.get(API_KEY_HEADER)
        if api_key is None:
            return None
        try:
            key = verify_api_key(api_key=api_key, remote_ip=request.META.get("REMOTE_ADDR", ""))
        except SignedRequestError as exc:
            raise SignedRequestRejected(exc) from exc
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return "X-MBX-APIKEY"


def _required_scope(view: object, method: str) -> str:
    declared = getattr(view, "required_scope", None)
    if isinstance(declared, str):
        return declared
    return "read" if method.upper() in SAFE_METHODS else "trade"
