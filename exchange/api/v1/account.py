"""The account: balances, trades, deposits, withdrawals (history and request), fees,
volume reports and the calling API key.

Withdrawals follow the web wallet's rules (accounts.views.wallet): the amount is parsed
first (a malformed one burns no authenticator code), then the user's TOTP code is verified
(accounts.services.twofactor: wrong codes audited and rate-limited, a right one cannot be
replayed), then accounts.services.withdrawals.request_withdrawal holds amount plus fee. A
signed request also needs the key's `withdraw` scope.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.amounts import parse_amount
from accounts.http import actor_context
from accounts.models import ApiKey, Deposit, Withdrawal
from accounts.selectors import get_asset, list_balances, list_deposits, list_withdrawals
from accounts.services.twofactor import verify_totp_code
from accounts.services.withdrawals import request_withdrawal
from exchange.api.v1.base import (
    ApiView,
    InvalidParameter,
    body,
    fmt,
    from_ms,
    ms,
    rate,
    time_range,
    user_of,
)
from exchange.api.v1.idempotency import idempotent
from exchange.api.v1.inputs import WithdrawalInput
from exchange.api.v1.orders import ERRORS, IDEMPOTENCY_PARAMETER
from exchange.api.v1.pagination import NewestFirst
from exchange.api.v1.serializers import TradeSerializer
from exchange.errors import DomainError
from markets.models import Market
from markets.selectors import get_market, list_markets
from reporting.fee_overview import fee_overview
from reporting.selectors import volume
from trading.selectors import list_user_trades

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BalancesApi(ApiView):
    """`GET`: every balance of the user (available, locked, total), by asset code."""

    @extend_schema(responses={200: OpenApiResponse(description="{results: [...]}"), **ERRORS})
    def get(self, request: Request) -> Response:
        rows = [
            {
                "asset": row.asset.code,
                "available": fmt(row.available, row.asset.decimals),
                "locked": fmt(row.locked, row.asset.decimals),
                "total": fmt(row.available + row.locked, row.asset.decimals),
            }
            for row in list_balances(user=user_of(request))
        ]
        return Response({"results": rows})


class TradeListApi(ApiView):
    """`GET`: the user's trades, newest first (cursor pages); `market`, time filters."""

    @extend_schema(
        parameters=[
            OpenApiParameter("market", str),
            OpenApiParameter("start_time", int),
            OpenApiParameter("end_time", int),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={200: TradeSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        symbol = request.query_params.get("market")
        market = get_market(symbol=symbol) if symbol is not None else None
        trades = list_user_trades(user=user, market=market).select_related(
            "market__base", "market__quote"
        )
        start, end = time_range(request.query_params)
        if start is not None:
            trades = trades.filter(created_at__gte=from_ms(start))
        if end is not None:
            trades = trades.filter(created_at__lt=from_ms(end))
        pages = NewestFirst()
        rows = pages.rows_of(trades, request, self)
        data = TradeSerializer(rows, many=True, context={"user_id": user.pk}).data
        return Response(pages.answer(data))


def _deposit(row: Deposit) -> dict[str, Any]:
    return {
        "id": row.pk,
        "asset": row.asset.code,
        "amount": fmt(row.amount, row.asset.decimals),
        "external_ref": row.external_ref,
        "created_at": ms(row.created_at),
    }


def _withdrawal(row: Withdrawal) -> dict[str, Any]:
    places = row.asset.decimals
    return {
        "id": row.pk,
        "asset": row.asset.code,
        "amount": fmt(row.amount, places),
        "fee": fmt(row.fee, places),
        "address": row.address,
        "status": row.status,
        "external_txid": row.external_txid,
        "reject_reason": row.reject_reason,
        "created_at": ms(row.created_at),
        "decided_at": ms(row.decided_at),
        "completed_at": ms(row.completed_at),
    }


class DepositListApi(ApiView):
    """`GET`: the user's credited deposits, newest first (cursor pages)."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses={200: OpenApiResponse(description="{results, next_cursor}"), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        pages = NewestFirst()
        rows = pages.rows_of(list_deposits(user=user_of(request)), request, self)
        return Response(pages.answer([_deposit(row) for row in rows]))


class WithdrawalListApi(ApiView):
    """`GET`: the user's withdrawals, newest first (cursor pages). `POST`: request one
    (TOTP code required, as on the web; a signed request needs the `withdraw` scope)."""

    @property
    def required_scope(self) -> str:
        return "withdraw" if self.request.method == "POST" else "read"

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses={200: OpenApiResponse(description="{results, next_cursor}"), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        pages = NewestFirst()
        rows = pages.rows_of(list_withdrawals(user=user_of(request)), request, self)
        return Response(pages.answer([_withdrawal(row) for row in rows]))

    @extend_schema(
        request=WithdrawalInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiResponse(description="the withdrawal (pending)"), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        user = user_of(request)

        def run() -> Response:
            payload = WithdrawalInput(data=body(request))
            payload.is_valid(raise_exception=True)
            values = payload.validated_data
            asset = get_asset(code=values["asset"])
            amount = parse_amount(values["amount"], asset=asset)
            verify_totp_code(
                user=user, code=values["totp_code"], context=actor_context(request._request)
            )
            withdrawal = request_withdrawal(
                user=user, asset=asset, amount=amount, address=values["address"]
            )
            return Response(_withdrawal(withdrawal), status=status.HTTP_201_CREATED)

        return idempotent(request, user=user, run=run)


def _tier(tier: Any) -> dict[str, Any] | None:  # Any: a FeeTier or None
    if tier is None:
        return None
    return {
        "name": tier.name,
        "min_volume_30d": format(tier.min_volume_30d.normalize(), "f"),
        "maker_fee": rate(tier.maker_fee),
        "taker_fee": rate(tier.taker_fee),
    }


def _amount(value: Any) -> str | None:  # Any: Decimal or None
    return None if value is None else format(value.normalize(), "f")


class FeesApi(ApiView):
    """`GET`: the user's fee tier, 30-day volume, next tier and per-market rates."""

    @extend_schema(responses={200: OpenApiResponse(description="fee overview"), **ERRORS})
    def get(self, request: Request) -> Response:
        overview = fee_overview(user_of(request))
        markets = [
            {
                "market": row.market.symbol,
                "maker_fee": rate(row.maker_fee),
                "taker_fee": rate(row.taker_fee),
                "your_maker_fee": rate(row.your_maker_fee),
                "your_taker_fee": rate(row.your_taker_fee),
                "quote_volume_30d": _amount(row.volume.quote_volume),
                "trade_count_30d": row.volume.trade_count,
            }
            for row in overview.markets
        ]
        return Response(
            {
                "reference_asset": overview.reference_asset,
                "tier": _tier(overview.tier),
                "assigned_volume": _amount(overview.assigned_volume),
                "assigned_at": ms(overview.assigned_at),
                "volume_30d": _amount(overview.volume_30d),
                "window_start": overview.window_start.isoformat(),
                "window_end": overview.window_end.isoformat(),
                "next_tier": _tier(overview.next_tier),
                "to_next_tier": _amount(overview.to_next_tier),
                "tiers": [_tier(tier) for tier in overview.tiers],
                "markets": markets,
            }
        )


def _date(params: Any, name: str) -> date:
    """A required YYYY-MM-DD query parameter (Any: a QueryDict)."""
    raw = params.get(name)
    if raw is None or not _ISO_DATE.fullmatch(raw):
        raise InvalidParameter(f"{name} must be a date (YYYY-MM-DD).", field=name)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{name} must be a date (YYYY-MM-DD).", field=name) from exc


class VolumeReportApi(ApiView):
    """`GET ?start=&end=[&market=][&calendar=]`: the user's own traded volume per market
    over local days start..end inclusive (reporting.selectors.volume)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("start", date, required=True),
            OpenApiParameter("end", date, required=True),
            OpenApiParameter("market", str),
            OpenApiParameter("calendar", str, enum=["gregorian", "jalali"]),
        ],
        responses={200: OpenApiResponse(description="{start, end, calendar, results}"), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        start, end = _date(params, "start"), _date(params, "end")
        calendar = params.get("calendar", "gregorian")
        symbol = params.get("market")
        market = get_market(symbol=symbol) if symbol is not None else None
        totals = volume(
            market=market, user=user_of(request), start=start, end=end, calendar=calendar
        )
        if market is not None:
            by_symbol: dict[str, Any] = {market.symbol: totals}
            markets = {market.symbol: market}
        else:
            by_symbol = dict(totals) if isinstance(totals, dict) else {}
            markets = {m.symbol: m for m in list_markets(include_unlisted=True)}
        results = [
            _volume_row(markets[symbol], row)
            for symbol, row in sorted(by_symbol.items())
            if symbol in markets
        ]
        return Response(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "calendar": calendar,
                "results": results,
            }
        )


def _volume_row(market: Market, row: Any) -> dict[str, Any]:  # Any: a UserVolume
    return {
        "market": market.symbol,
        "base_volume": fmt(row.base_volume, market.base.decimals),
        "quote_volume": fmt(row.quote_volume, market.quote.decimals),
        "trade_count": row.trade_count,
        "fees_paid": fmt(row.fees_paid, market.quote.decimals),
    }


class NotApiKey(DomainError):
    code = "api_key_required"


class ApiKeySelfApi(ApiView):
    """`GET`: the calling key (label, type, scopes, allowlist, expiry, its rate limits)."""

    @extend_schema(responses={200: OpenApiResponse(description="the key"), **ERRORS})
    def get(self, request: Request) -> Response:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise NotApiKey("This endpoint describes the API key that signed the request.")
        return Response(
            {
                "label": key.label,
                "key": key.key,
                "type": key.key_type,
                "scopes": {
                    "read": key.can_read,
                    "trade": key.can_trade,
                    "withdraw": key.can_withdraw,
                },
                "ip_allowlist": list(key.ip_allowlist),
                "created_at": ms(key.created_at),
                "expires_at": ms(key.expires_at),
                "last_used_at": ms(key.last_used_at),
                "rate_limits": {
                    "weight_per_minute": key.weight_per_minute
                    or settings.API_WEIGHT_PER_MINUTE_KEY,
                    "orders_per_10s": key.orders_per_10s or settings.API_ORDERS_PER_10S,
                    "orders_per_day": key.orders_per_day or settings.API_ORDERS_PER_DAY,
                },
            }
        )
