"""One exception handler for the native API: every error is {code, message, field}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from exchange.errors import DomainError
from exchange.middleware import RETRY_AFTER_SECONDS


def _first_error(detail: Any, prefix: str | None = None) -> tuple[str | None, str, str]:
    """Flatten DRF's nested validation detail into (field, message, code) of the first error."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else None
            if prefix and field:
                field = f"{prefix}.{field}"
            return _first_error(value, field or prefix)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    code = getattr(detail, "code", None) or "invalid"
    return prefix, str(detail), str(code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map DomainError and DRF's own errors to the documented error body.

    A 503 (a store the request needs is down) carries Retry-After, as the database outage
    answer of exchange.middleware does. Database errors are not handled here: DRF re-raises
    what this returns None for, and the middleware answers it.
    """
    if isinstance(exc, TooManyFieldsSent | RequestDataTooBig):
        too_much = "too_many_parameters" if isinstance(exc, TooManyFieldsSent) else "too_large"
        body = {
            "code": f"request_{too_much}",
            "message": "The request is too large.",
            "field": None,
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        domain_response = Response(exc.as_dict(), status=exc.status)
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            domain_response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return domain_response
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.detail)
        response.data = {"code": code, "message": message, "field": field}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = {"code": code, "message": str(exc.detail), "field": None}
    return response
