"""Binance's error bodies for the compat API: `{"code": -NNNN, "msg": "..."}`.

ccxt maps Binance errors by exact message first, then by code (PARTNER_API §1.7), so the
messages below are Binance's verbatim where ccxt looks at them. Every error the compat
views can meet becomes one of these: our DomainErrors by their stable `code`, the signing
layer's refusals by their own `binance_code`, DRF's errors (unknown method, bad media type,
throttling) by kind. Anything not recognised is -1000 with HTTP 400, never an HTML page or a
DRF `{"detail": ...}` body (ccxt would treat that as a network error and retry forever).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DatabaseError
from rest_framework import exceptions
from rest_framework.response import Response

from exchange.errors import DomainError
from exchange.middleware import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)

INSUFFICIENT = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
NO_SUCH_ORDER = "Order does not exist."
UNKNOWN_ORDER = "Unknown order sent."
DUPLICATE = "Duplicate order sent."
BAD_SYMBOL = "Invalid symbol."
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL = "Illegal characters found in parameter '{}'; legal range is '{}'."
UNKNOWN_ERROR = "An unknown error occurred while processing the request."

# Our field names -> the parameter a Binance client sent.
PARAMETER_NAMES = {
    "price": "price",
    "quantity": "quantity",
    "quote_amount": "quoteOrderQty",
    "stop_price": "stopPrice",
    "client_order_id": "newClientOrderId",
    "side": "side",
    "order_type": "type",
    "time_in_force": "timeInForce",
    "stp_mode": "selfTradePreventionMode",
    "order_id": "orderId",
    "market": "symbol",
    "symbol": "symbol",
    "interval": "interval",
    "limit": "limit",
}


@dataclass(frozen=True, slots=True)
class BinanceError(Exception):
    """An error already in Binance's terms: raise it from a compat view."""

    code: int
    msg: str
    status: int = 400

    def response(self) -> Response:
        return Response({"code": self.code, "msg": self.msg}, status=self.status)


def mandatory(parameter: str) -> BinanceError:
    return BinanceError(-1102, MANDATORY.format(parameter))


def illegal(parameter: str, legal: str) -> BinanceError:
    return BinanceError(-1100, ILLEGAL.format(parameter, legal))


_FILTERS = {
    "price_off_tick": "PRICE_FILTER",
    "price_out_of_band": "PERCENT_PRICE_BY_SIDE",
    "stop_price_off_tick": "PRICE_FILTER",
    "stop_price_out_of_band": "PERCENT_PRICE_BY_SIDE",
    "quantity_off_lot": "LOT_SIZE",
    "quantity_below_minimum": "LOT_SIZE",
    "quantity_above_maximum": "LOT_SIZE",
    "notional_below_minimum": "NOTIONAL",
    "quote_amount_too_small": "NOTIONAL",
}
_BY_CODE: dict[str, tuple[int, str]] = {
    "insufficient_funds": (-2010, INSUFFICIENT),
    "duplicate_client_order_id": (-2010, DUPLICATE),
    "market_not_found": (-1121, BAD_SYMBOL),
    "order_not_found": (-2013, NO_SUCH_ORDER),
    "order_not_open": (-2011, UNKNOWN_ORDER),
    "market_halted": (-2010, "Market is closed."),
    "market_cancel_only": (-2010, "Market is closed."),
    "market_no_reference_price": (-2010, "Market is closed."),
    "account_frozen": (-2010, "This action is disabled on this account."),
    "side_invalid": (-1117, "Invalid side."),
    "time_in_force_invalid": (-1115, "Invalid timeInForce."),
    "order_type_invalid": (-1116, "Invalid orderType."),
}


def from_domain_error(exc: DomainError) -> BinanceError:
    """Our DomainError (stable `code`, `field`) in Binance's terms."""
    binance_code = getattr(exc, "binance_code", None)
    if isinstance(binance_code, int):  # the signing layer's refusals carry their own
        return BinanceError(
            binance_code, str(getattr(exc, "binance_message", exc.message)), exc.status
        )
    parameter = PARAMETER_NAMES.get(exc.field or "", exc.field or "")
    if exc.code in _FILTERS:
        return BinanceError(-1013, f"Filter failure: {_FILTERS[exc.code]}")
    if exc.code in _BY_CODE:
        code, msg = _BY_CODE[exc.code]
        return BinanceError(code, msg)
    if exc.code.endswith("_required"):
        return mandatory(parameter)
    if exc.code.startswith("amount_") or exc.code.endswith("_invalid"):
        return BinanceError(
            -1100, f"Illegal characters found in parameter '{parameter}'. {exc.message}"
        )
    if exc.code.endswith("_not_allowed"):
        return BinanceError(-1106, f"Parameter '{parameter}' sent when not required.")
    if exc.status == 503:
        return BinanceError(
            -1007,
            "Timeout waiting for response from backend server. "
            "Send status unknown; execution status unknown.",
            503,
        )
    return BinanceError(
        -1013 if exc.code.startswith(("price", "quantity", "order")) else -1000, exc.message
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The compat views' handler (set per view in base.BinanceView): Binance bodies only."""
    if isinstance(exc, BinanceError):
        return exc.response()
    if isinstance(exc, DomainError):
        error = from_domain_error(exc)
        response = error.response()
        if error.status == 503:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, TooManyFieldsSent):  # DRF reads request.GET inside the view
        return BinanceError(-1101, "Too many parameters sent for this endpoint.").response()
    if isinstance(exc, RequestDataTooBig):
        return BinanceError(-1000, "The request is too large.", 413).response()
    if isinstance(exc, DatabaseError):
        log.warning("compat API: database error answered 503 -1007", exc_info=exc)
        response = BinanceError(
            -1007,
            "Timeout waiting for response from backend server. "
            "Send status unknown; execution status unknown.",
            503,
        ).response()
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return BinanceError(-2014, "API-key format invalid.", 401).response()
    if isinstance(exc, exceptions.PermissionDenied):
        return BinanceError(
            -2015, "Invalid API-key, IP, or permissions for action.", 401
        ).response()
    if isinstance(exc, exceptions.MethodNotAllowed):
        return BinanceError(
            -1000, f"Method {getattr(exc, 'detail', '')} is not supported.", 405
        ).response()
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return BinanceError(
            -1000, "Content-Type not supported: send application/x-www-form-urlencoded.", 415
        ).response()
    if isinstance(exc, exceptions.ParseError):
        return BinanceError(-1000, "Malformed request body.", 400).response()
    if isinstance(exc, exceptions.Throttled):
        response = BinanceError(
            -1003, "Too many requests; current limit is exceeded.", 429
        ).response()
        wait = getattr(exc, "wait", None)
        if wait is not None:
            response["Retry-After"] = str(int(wait) + 1)
        return response
    if isinstance(exc, exceptions.NotFound):
        return BinanceError(-1000, "Not found.", 404).response()
    if isinstance(exc, exceptions.APIException):
        return BinanceError(-1000, str(exc.detail), exc.status_code).response()
    return None
