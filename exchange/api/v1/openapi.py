"""The v1 API's OpenAPI details the views' own annotations leave out.

The batch endpoints read their `orders` list by hand, so drf-spectacular cannot guess
their bodies; DELETE /orders and DELETE /orders/{id} would share an operation id. Applied
to the view classes after import (the view modules stay as they are); exchange/api/schema.py
imports this module and then adds the errors every operation can answer
({code, message, field}, exchange.api.schema.v1_errors).
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from exchange.api.v1 import account, markets, orders
from exchange.api.v1.inputs import MAX_BATCH, OrderRefInput, PlaceOrderInput
from exchange.api.v1.serializers import ErrorSerializer, OrderSerializer, TradeSerializer
from trading.models import CLIENT_ORDER_ID_PATTERN

_BATCH_RESULT = inline_serializer(
    "OrderBatchResult",
    {
        "results": serializers.ListField(
            child=inline_serializer(
                "OrderBatchItem",
                {
                    "index": serializers.IntegerField(help_text="the item's place in `orders`"),
                    "ok": serializers.BooleanField(),
                    "order": OrderSerializer(required=False, help_text="when ok"),
                    "error": ErrorSerializer(required=False, help_text="when not ok"),
                },
            )
        )
    },
)
_BATCH_HELP = f"1 to {MAX_BATCH} items, each handled on its own (a refused item stops none)."
_PLACE_BATCH = inline_serializer(
    "PlaceOrderBatch",
    {"orders": serializers.ListField(child=PlaceOrderInput(), help_text=_BATCH_HELP)},
)
_CANCEL_BATCH = inline_serializer(
    "CancelOrderBatch",
    {"orders": serializers.ListField(child=OrderRefInput(), help_text=_BATCH_HELP)},
)
# The orders module's own error table (it tracks that module's statuses, e.g. the
# idempotency conflicts), with the batch's own 400 described.
_BATCH_ERRORS = {
    **orders.ERRORS,
    400: OpenApiResponse(
        ErrorSerializer,
        description="batch_invalid: not a list of 1-20 items (or another bad input); nothing "
        "changed.",
    ),
}
_CANCEL_ALL = inline_serializer(
    "CancelAllRequested", {"cancel_requested": serializers.IntegerField()}
)

extend_schema_view(
    post=extend_schema(
        request={
            "application/json": _PLACE_BATCH,
            "application/x-www-form-urlencoded": inline_serializer(
                "PlaceOrderBatchForm",
                {"orders": serializers.CharField(help_text="the list as a JSON string")},
            ),
        },
        responses={200: _BATCH_RESULT, **_BATCH_ERRORS},
    )
)(orders.PlaceOrderBatchApi)
extend_schema_view(
    post=extend_schema(
        request={"application/json": _CANCEL_BATCH},
        responses={200: _BATCH_RESULT, **_BATCH_ERRORS},
    )
)(orders.CancelOrderBatchApi)
extend_schema_view(
    delete=extend_schema(
        operation_id="orders_cancel_all", responses={202: _CANCEL_ALL, **orders.ERRORS}
    )
)(orders.OrderListApi)


def _path(name: str, pattern: str, description: str) -> OpenApiParameter:
    # The pattern is what an existing id or symbol looks like; stating it keeps generated
    # ids routable (a newline or `/` in a path segment never reaches the view).
    return OpenApiParameter(
        name, str, OpenApiParameter.PATH, pattern=pattern, description=description
    )


_ORDER_ID = _path("order_id", r"^[0-9]{1,18}$", "the order's id")
_CLIENT_ORDER_ID = _path("client_order_id", CLIENT_ORDER_ID_PATTERN, "your client order id")
_SYMBOL = _path("symbol", r"^[A-Za-z0-9]{1,20}-[A-Za-z0-9]{1,20}$", "e.g. BTC-USDT, any case")

extend_schema_view(
    get=extend_schema(parameters=[_ORDER_ID]), delete=extend_schema(parameters=[_ORDER_ID])
)(orders.OrderDetailApi)
extend_schema_view(post=extend_schema(parameters=[_ORDER_ID]))(orders.ReduceOrderApi)
extend_schema_view(
    get=extend_schema(parameters=[_CLIENT_ORDER_ID]),
    delete=extend_schema(parameters=[_CLIENT_ORDER_ID]),
)(orders.ClientOrderDetailApi)
extend_schema_view(get=extend_schema(parameters=[_SYMBOL]))(markets.MarketDetailApi)
# The view answers {"results": [...]}, not a bare array as its own annotation says.
extend_schema_view(
    get=extend_schema(
        operation_id="markets_list",
        responses={
            200: inline_serializer("MarketList", {"results": markets.MarketSerializer(many=True)})
        },
    )
)(markets.MarketListApi)


def _page(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """A cursor page (pagination.NewestFirst): the rows, and the cursor of the next page."""
    return inline_serializer(
        name,
        {
            "results": item,
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="pass as `cursor` for the next page; null at the end"
            ),
        },
    )


# Both views answer a cursor page, not a bare array as their own annotations say.
extend_schema_view(
    get=extend_schema(
        operation_id="orders_list",
        responses={200: _page("OrderPage", OrderSerializer(many=True)), **orders.ERRORS},
    )
)(orders.OrderListApi)
extend_schema_view(
    get=extend_schema(
        operation_id="trades_list",
        responses={200: _page("TradePage", TradeSerializer(many=True)), **orders.ERRORS},
    )
)(account.TradeListApi)
