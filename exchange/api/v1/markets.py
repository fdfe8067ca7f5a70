"""Markets and their trading rules (public): `/api/v1/markets`, `/api/v1/markets/<symbol>`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api.v1.base import PublicApiView, fmt, rate
from exchange.api.v1.serializers import ErrorSerializer
from markets.errors import MarketNotFound
from markets.models import Market
from markets.selectors import get_market, list_markets
from trading.models import OrderType, StpMode, TimeInForce


class MarketSerializer(serializers.Serializer):
    """One market's identity and rules, amounts with the market's own places."""

    symbol = serializers.CharField()
    base_asset = serializers.CharField(source="base.code")
    quote_asset = serializers.CharField(source="quote.code")
    base_decimals = serializers.IntegerField(source="base.decimals")
    quote_decimals = serializers.IntegerField(source="quote.decimals")
    status = serializers.CharField()
    tick_size = serializers.SerializerMethodField()
    lot_size = serializers.SerializerMethodField()
    min_quantity = serializers.SerializerMethodField()
    max_quantity = serializers.SerializerMethodField()
    min_notional = serializers.SerializerMethodField()
    maker_fee = serializers.SerializerMethodField()
    taker_fee = serializers.SerializerMethodField()
    price_band_pct = serializers.SerializerMethodField()
    last_price = serializers.SerializerMethodField()
    order_types = serializers.SerializerMethodField()
    time_in_force = serializers.SerializerMethodField()
    stp_modes = serializers.SerializerMethodField()

    def get_tick_size(self, market: Market) -> str | None:
        return fmt(market.tick_size, market.quote.decimals)

    def get_lot_size(self, market: Market) -> str | None:
        return fmt(market.lot_size, market.base.decimals)

    def get_min_quantity(self, market: Market) -> str | None:
        return fmt(market.min_quantity, market.base.decimals)

    def get_max_quantity(self, market: Market) -> str | None:
        return fmt(market.max_quantity, market.base.decimals)

    def get_min_notional(self, market: Market) -> str | None:
        return fmt(market.min_notional, market.quote.decimals)

    def get_maker_fee(self, market: Market) -> str:
        return rate(market.maker_fee)

    def get_taker_fee(self, market: Market) -> str:
        return rate(market.taker_fee)

    def get_price_band_pct(self, market: Market) -> str:
        return rate(market.price_band_pct)

    def get_last_price(self, market: Market) -> str | None:
        return fmt(market.last_price, market.quote.decimals)

    def get_order_types(self, market: Market) -> list[str]:
        return list(OrderType.values)

    def get_time_in_force(self, market: Market) -> list[str]:
        return list(TimeInForce.values)

    def get_stp_modes(self, market: Market) -> list[str]:
        return list(StpMode.values)


class MarketListApi(PublicApiView):
    """Every listed market with its rules, by symbol."""

    @extend_schema(responses={200: MarketSerializer(many=True)})
    def get(self, request: Request) -> Response:
        markets = list_markets()
        return Response({"results": MarketSerializer(markets, many=True).data})


class MarketDetailApi(PublicApiView):
    """One listed market (`BTC-USDT`, any case); unlisted ones look missing."""

    @extend_schema(
        responses={200: MarketSerializer, 404: OpenApiResponse(ErrorSerializer)},
    )
    def get(self, request: Request, symbol: str) -> Response:
        market = get_market(symbol=symbol)
        if not market.listed:  # users never see an unlisted market, not even by name
            raise MarketNotFound("No such market.", field="market")
        data: dict[str, Any] = MarketSerializer(market).data
        return Response(data)
