"""What every compat view shares: the two view bases, parameters, symbols and numbers.

Parameters: GET and DELETE carry them in the query string; POST and PUT in the query string
and/or a form body (PARTNER_API §4.8). A name given twice (in either place) is refused with
-1101, as the signing layer does for signed requests. Values are read as text and parsed
here, so every malformed value is a Binance -1100/-1102 error, never a 500.

Symbols: Binance's `BTCUSDT` is our `BTC-USDT`; `resolve_symbol` finds the market with one
indexed query over the possible splits, so a market listed while the server runs is found.

Numbers go out as strings with the asset's places (`fmt`), ids and times as integers
(milliseconds since the epoch: `ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api import ratelimit
from exchange.api.auth import ApiKeySignatureAuthentication
from exchange.api.binance import errors
from exchange.api.binance.errors import BinanceError, illegal, mandatory
from markets.errors import MarketNotFound
from markets.models import Market
from markets.selectors import get_current_market

MAX_PARAMETER_CHARS = 1024  # a symbols list of 100 markets fits; anything longer is abuse
_INT_CHARS = frozenset("0123456789")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class BinanceView(APIView):
    """Public compat endpoint: no authentication, Binance error bodies, JSON out."""

    authentication_classes: Sequence[Any] = ()  # Any: DRF's class lists
    permission_classes: Sequence[Any] = (AllowAny,)
    renderer_classes: Sequence[Any] = (JSONRenderer,)
    parser_classes: Sequence[Any] = (FormParser,)
    weight = 1  # request weight (rate limits), per endpoint; see exchangeInfo.rateLimits

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Any]:
        return errors.exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        ratelimit.refuse_if_banned(request)  # a banned IP is not worth authenticating
        super().initial(request, *args, **kwargs)  # authentication first: limits are per key
        ratelimit.charge(request, self)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in ratelimit.headers(request).items():
            response[name] = value
        return response


class SignedView(BinanceView):
    """Signed compat endpoint (X-MBX-APIKEY + signature): request.user is the key's owner,
    request.auth the ApiKey. `required_scope` as in exchange.api.auth."""

    authentication_classes: Sequence[Any] = (ApiKeySignatureAuthentication,)
    permission_classes: Sequence[Any] = (IsAuthenticated,)


def params(request: Request) -> dict[str, str]:
    """The request's parameters, each once: query string, plus the form body on POST/PUT.

    Raises -1101 for a name given twice and -1100 for a value too long to be honest.
    """
    pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    if request.method in ("POST", "PUT"):
        content_type = request.META.get("CONTENT_TYPE", "")
        body = request._request.body  # cached by Django; the signature check read it first
        if body:
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise BinanceError(
                    -1000,
                    "Content-Type not supported: send application/x-www-form-urlencoded.",
                    415,
                )
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BinanceError(-1000, "Malformed request body.") from exc
            pairs += parse_qsl(text, keep_blank_values=True)
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise BinanceError(-1101, f"Duplicate values for a parameter detected: {name}.")
        if len(value) > MAX_PARAMETER_CHARS:
            raise illegal(name, f"at most {MAX_PARAMETER_CHARS} characters")
        out[name] = value
    return out


def text(values: dict[str, str], name: str, *, required: bool = False) -> str | None:
    """A parameter as given (None or "" when absent: -1102 if required)."""
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise mandatory(name)
        return None
    return value


def integer(
    values: dict[str, str],
    name: str,
    *,
    required: bool = False,
    minimum: int = 0,
    maximum: int = 2**63 - 1,
) -> int | None:
    """A plain non-negative integer parameter (ASCII digits only, no sign, no spaces)."""
    raw = text(values, name, required=required)
    if raw is None:
        return None
    if not set(raw) <= _INT_CHARS or len(raw) > 19:
        raise illegal(name, f"{minimum}-{maximum}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise illegal(name, f"{minimum}-{maximum}")
    return value


def resolve_symbol(symbol: str | None, *, parameter: str = "symbol") -> Market:
    """The market of a Binance symbol (`BTCUSDT`); -1121 Invalid symbol when none."""
    if symbol is None or symbol == "":
        raise mandatory(parameter)
    if not symbol.isascii() or not symbol.isalnum() or len(symbol) > 40:
        raise BinanceError(-1121, errors.BAD_SYMBOL)
    cached = _symbol_ids.get(symbol)
    if cached is not None:
        try:
            # One narrow prepared read (status, last price, rules version); the rules from
            # the per-process cache, so a staff edit applies at the next request.
            return get_current_market(market_id=cached)
        except MarketNotFound:
            _symbol_ids.pop(symbol, None)  # deleted (and maybe listed again): look it up
    candidates = [f"{symbol[:i]}-{symbol[i:]}" for i in range(1, len(symbol))]
    market_id = Market.objects.filter(symbol__in=candidates).values_list("pk", flat=True).first()
    if market_id is None:
        raise BinanceError(-1121, errors.BAD_SYMBOL)
    try:
        market = get_current_market(market_id=market_id)
    except MarketNotFound:  # deleted between the two reads
        raise BinanceError(-1121, errors.BAD_SYMBOL) from None
    _symbol_ids[symbol] = market_id
    return market


# Per process: Binance symbol (BTCUSDT) -> market id, for the markets that exist. A market's
# symbol is fixed once it is created (markets.admin), so an entry never goes stale; a market
# that is deleted is dropped at its next lookup. Unknown symbols are not remembered.
_symbol_ids: dict[str, int] = {}


def binance_symbol(market: Market) -> str:
    """`BTC-USDT` -> `BTCUSDT`."""
    return market.symbol.replace("-", "")


def fmt(value: Decimal | None, places: int) -> str:
    """A Decimal as Binance does: fixed point with `places` decimals ("0.00100000")."""
    if value is None:
        value = Decimal(0)
    quantum = Decimal(1).scaleb(-places)
    return format(value.quantize(quantum), "f")


def ms(moment: datetime | None) -> int:
    """Milliseconds since the epoch (0 for None)."""
    if moment is None:
        return 0
    return (moment - _EPOCH) // _MS
