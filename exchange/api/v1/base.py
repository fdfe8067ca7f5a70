"""What every v1 view shares: authentication, errors, rate limits, parameters, numbers.

Authentication: a signed API key (`X-MBX-APIKEY` + `signature` over the raw query string and
body, exchange.api.auth; a view's `required_scope` names the scope) or the web UI's Django
session, whose unsafe methods need the CSRF token (DRF's SessionAuthentication enforces it
for session-authenticated requests only). A request with the key header is judged by the
signature alone.

Bodies are JSON (`application/json`) or a form (`application/x-www-form-urlencoded`, as
ccxt-style signers send them). A signed JSON request carries `timestamp`, `recvWindow` and
`signature` in the query string; the signature covers the query string and the raw body.
A parameter given twice (query string or form) is refused, as the signing layer does.

Errors are {code, message, field} (exchange.api.errors). Rate limits are the compat API's
(exchange.api.ratelimit: `weight`, `order_count`); its Binance-shaped refusal becomes a
v1 error with the same status and Retry-After.

Numbers go out as strings with the asset's or market's places (`fmt`), ids and times as
integers (milliseconds since the epoch: `ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from exchange.api import ratelimit
from exchange.api.auth import ApiKeySignatureAuthentication
from exchange.api.errors import exception_handler
from exchange.errors import DomainError

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise  # the stubs' name for lazy strings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: anything later is not a time
# Query and form values are short (symbols, ids, amounts, cursors); longer is abuse.
MAX_PARAMETER_CHARS = 1024


class InvalidParameter(DomainError):
    """A parameter the view reads itself is malformed (the serializers cover the rest)."""

    code = "parameter_invalid"


class DuplicateParameter(DomainError):
    code = "duplicate_parameter"


class ApiView(APIView):
    """A v1 endpoint that needs a user (signed key or session); `request.auth` is the
    ApiKey for signed requests, None for the session."""

    authentication_classes: Sequence[Any] = (  # Any: DRF's class lists
        ApiKeySignatureAuthentication,
        SessionAuthentication,
    )
    permission_classes: Sequence[Any] = (IsAuthenticated,)
    renderer_classes: Sequence[Any] = (JSONRenderer,)
    parser_classes: Sequence[Any] = (JSONParser, FormParser)
    weight = 1  # request weight (exchange.api.ratelimit)

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Any]:
        return _handle

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # ratelimit.RateLimited is a DomainError: the v1 handler renders it {code, message}.
        ratelimit.refuse_if_banned(request)  # a banned IP is not worth authenticating
        super().initial(request, *args, **kwargs)  # authentication first: limits are per key
        _refuse_duplicates(request.query_params)
        ratelimit.charge(request, self)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in ratelimit.headers(request).items():
            response[name] = value
        return response


class PublicApiView(ApiView):
    """A v1 endpoint anyone may read (market rules); a key or session is still honoured."""

    permission_classes: Sequence[Any] = (AllowAny,)


@extend_schema(exclude=True)
class NotFoundApi(ApiView):
    """Every path under /api/v1/ that no route matches: 404 in the API's error shape
    ({code: "not_found", ...}), never Django's HTML page. No authentication: there is
    nothing here to authorise; the request still counts against its IP's weight."""

    authentication_classes: Sequence[Any] = ()
    permission_classes: Sequence[Any] = (AllowAny,)

    def _refuse(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("No such API path.")

    get = post = put = patch = delete = _refuse
    options = _refuse  # type: ignore[assignment]  # OPTIONS too: no metadata for nothing


def _handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    retry_after = getattr(exc, "retry_after", None)
    if response is not None and retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _refuse_duplicates(values: QueryDict) -> None:
    for name, given in values.lists():
        if len(given) > 1:
            raise DuplicateParameter(f"{name} was given more than once.", field=name[:64])
        if len(given[0]) > MAX_PARAMETER_CHARS:
            raise InvalidParameter(
                f"{name} is longer than {MAX_PARAMETER_CHARS} characters.", field=name[:64]
            )


def body(request: Request) -> dict[str, Any]:
    """The request body as a dict (JSON object or form), duplicates in a form refused.

    Any: JSON values are whatever the client sent; serializers judge them.
    """
    data = request.data
    if isinstance(data, QueryDict):
        _refuse_duplicates(data)
        return {name: data[name] for name in data}
    if not isinstance(data, dict):
        raise InvalidParameter("The body must be a JSON object.", code="body_invalid")
    return data


def user_of(request: Request) -> User:
    """The authenticated user (IsAuthenticated ran first)."""
    user = request.user
    if not isinstance(user, User):  # unreachable behind IsAuthenticated
        raise DomainError("Authentication required.", code="not_authenticated")
    return user


def fmt(value: Decimal | None, places: int) -> str | None:
    """A Decimal as a fixed-point string with `places` decimals; None stays None."""
    if value is None:
        return None
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def rate(value: Decimal) -> str:
    """A fee rate as given (0.001), without the table's trailing zeros."""
    return format(value.normalize(), "f") if value else "0"


def ms(moment: datetime | None) -> int | None:
    """Milliseconds since the epoch; None stays None."""
    if moment is None:
        return None
    return (moment - _EPOCH) // _MS


def from_ms(value: int) -> datetime:
    return _EPOCH + value * _MS


class StrictCharField(serializers.CharField):
    """A string and nothing else: JSON numbers are refused, not stringified (a float such
    as 0.1 + 0.2 would arrive as 0.30000000000000004)."""

    default_error_messages: ClassVar[dict[str, str | _StrPromise]] = {
        "invalid": 'Send this value as a string, e.g. "12.5".'
    }

    def __init__(self, **kwargs: Any) -> None:
        # " 50000" is not a canonical amount: refused by the parser, never trimmed into one.
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


def time_range(params: Any) -> tuple[int | None, int | None]:
    """(start_time, end_time) in ms from the query (Any: a QueryDict)."""
    bounds: list[int | None] = []
    for name in ("start_time", "end_time"):
        raw = params.get(name)
        if raw is None:
            bounds.append(None)
            continue
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 15) or int(raw) > MAX_MS:
            raise InvalidParameter(f"{name} must be milliseconds since the epoch.", field=name)
        bounds.append(int(raw))
    start, end = bounds
    if start is not None and end is not None and start >= end:
        raise InvalidParameter("end_time must be after start_time.", field="end_time")
    return start, end
