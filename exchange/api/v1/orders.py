"""Orders: place (one or a batch), read, list, cancel (one, a batch, all), reduce.

Placing and cancelling are asynchronous, as everywhere in the exchange: a placed order is
accepted (its hold taken, status `new`) and the engine matches it moments later; a cancel
or a reduction is a command the engine applies unless a fill got there first. So the
answers are 201 (placed) and 202 (cancel or reduce requested) with the order as stored;
`GET /api/v1/orders/<id>` shows what happened.

Another user's order ids and client order ids are answered exactly like unknown ones
(404 `order_not_found`): a key cannot learn that someone else's order exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from exchange.api.v1.base import ApiView, InvalidParameter, body, from_ms, time_range, user_of
from exchange.api.v1.idempotency import idempotent
from exchange.api.v1.inputs import (
    MAX_BATCH,
    CancelBatchInput,
    OrderRefInput,
    PlaceBatchInput,
    PlaceOrderInput,
    ReduceOrderInput,
    validation_error,
)
from exchange.api.v1.pagination import NewestFirst
from exchange.api.v1.serializers import ErrorSerializer, OrderSerializer, item_result
from exchange.errors import DomainError
from markets.selectors import get_market
from trading.errors import OrderNotFound
from trading.models import Order, OrderStatus
from trading.selectors import find_order_by_client_id, get_order, list_orders
from trading.services.orders import (
    cancel_all,
    cancel_order,
    parse_order_spec,
    place_order,
    reduce_order,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; nothing changed."),
    401: OpenApiResponse(ErrorSerializer, description="No valid key signature or session."),
    403: OpenApiResponse(ErrorSerializer, description="Scope, CSRF or IP refused."),
    404: OpenApiResponse(ErrorSerializer, description="No such order (or not yours)."),
    409: OpenApiResponse(ErrorSerializer, description="State conflict; nothing changed."),
    422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused for another body."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limit; see Retry-After."),
}
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Optional. A repeat with the same key and body returns the first answer.",
)
STATUS_FILTERS = (*OrderStatus.values, "open")


class BatchInvalid(DomainError):
    code = "batch_invalid"


def _place(user: User, raw: object) -> Order:
    """Parse one order's fields and place it: the one path of single and batch placing."""
    if not isinstance(raw, dict):
        raise InvalidParameter("Each order must be an object.", code="order_invalid")
    payload = PlaceOrderInput(data=raw)
    if not payload.is_valid():
        error = validation_error(payload.errors)
        raise InvalidParameter(error["message"], field=error["field"], code=error["code"])
    values = dict(payload.validated_data)
    market = get_market(symbol=values.pop("market"))
    values["order_type"] = values.pop("type", None)
    return place_order(user=user, market=market, spec=parse_order_spec(values))


def _batch_items(request: Request) -> list[Any]:
    """The `orders` list of a batch body: a JSON array, or a JSON string in a form body."""
    data = body(request)
    extra = sorted(set(data) - {"orders", "timestamp", "recvWindow", "signature"})
    if extra:
        raise BatchInvalid(f"Unknown field {extra[0]!r}.", field=extra[0][:64])
    items = data.get("orders")
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError as exc:
            raise BatchInvalid("orders must be a JSON array.", field="orders") from exc
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise BatchInvalid(f"orders must be a list of 1 to {MAX_BATCH} items.", field="orders")
    return items


def _each(items: list[Any], act: Callable[[Any], Order]) -> list[dict[str, Any]]:
    """Apply `act` to every item in order; a refused item does not stop the others."""
    results = []
    for index, item in enumerate(items):
        try:
            order = act(item)
        except DomainError as exc:  # per item: a batch answers every item, not the first error
            results.append(item_result(index, error=exc.as_dict()))
        else:
            results.append(item_result(index, data=OrderSerializer(order).data))
    return results


class OrderListApi(ApiView):
    """`GET`: the user's orders, newest first (cursor pages). `POST`: place one order.
    `DELETE`: cancel every open order (of `market`, or everywhere)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("market", str),
            OpenApiParameter("status", str, enum=list(STATUS_FILTERS)),
            OpenApiParameter("start_time", int, description="ms, inclusive"),
            OpenApiParameter("end_time", int, description="ms, exclusive"),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={200: OrderSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        orders = _filtered(user_of(request), request.query_params)
        pages = NewestFirst()
        rows = pages.rows_of(orders, request, self)
        return Response(pages.answer(OrderSerializer(rows, many=True).data))

    @extend_schema(
        request=PlaceOrderInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OrderSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        user = user_of(request)

        def run() -> Response:
            order = _place(user, body(request))
            return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)

        return idempotent(request, user=user, run=run)

    @extend_schema(
        operation_id="orders_cancel_all",
        parameters=[OpenApiParameter("market", str)],
        responses={202: OpenApiResponse(description="{cancel_requested: n}"), **ERRORS},
    )
    def delete(self, request: Request) -> Response:
        symbol = request.query_params.get("market")
        market = get_market(symbol=symbol) if symbol is not None else None
        count = cancel_all(user=user_of(request), market=market)
        return Response({"cancel_requested": count}, status=status.HTTP_202_ACCEPTED)

    def order_count(self, request: Request) -> int:
        """Orders this request counts against the order rate limits."""
        return 1 if request.method == "POST" else 0


def _filtered(user: User, params: Any) -> QuerySet[Order]:
    """list_orders narrowed by the query's filters (Any: a QueryDict)."""
    symbol = params.get("market")
    market = get_market(symbol=symbol) if symbol is not None else None
    wanted = params.get("status")
    if wanted is not None and wanted not in STATUS_FILTERS:
        raise InvalidParameter(
            f"status must be one of {', '.join(STATUS_FILTERS)}.", field="status"
        )
    orders = list_orders(user=user, market=market, open_only=wanted == "open")
    if wanted is not None and wanted != "open":
        orders = orders.filter(status=wanted)
    start, end = time_range(params)
    if start is not None:
        orders = orders.filter(created_at__gte=from_ms(start))
    if end is not None:
        orders = orders.filter(created_at__lt=from_ms(end))
    return orders.select_related("market__base", "market__quote")


def _order_id(raw: str) -> int:
    """A path's order id; anything but a plain id is an unknown order, never a 500."""
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise OrderNotFound("No such order.", field="order_id")
    return int(raw)


def _own_by_client_id(user: User, client_order_id: str) -> Order:
    order = find_order_by_client_id(user=user, client_order_id=client_order_id)
    if order is None:
        raise OrderNotFound("No such order.", field="client_order_id")
    return order


class OrderDetailApi(ApiView):
    """`GET`: one order. `DELETE`: ask the engine to cancel it."""

    @extend_schema(responses={200: OrderSerializer, **ERRORS})
    def get(self, request: Request, order_id: str) -> Response:
        order = get_order(user=user_of(request), order_id=_order_id(order_id))
        return Response(OrderSerializer(order).data)

    @extend_schema(responses={202: OrderSerializer, **ERRORS})
    def delete(self, request: Request, order_id: str) -> Response:
        order = cancel_order(user=user_of(request), order_id=_order_id(order_id))
        return Response(OrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class ClientOrderDetailApi(ApiView):
    """The same as OrderDetailApi, by the client's own order id."""

    @extend_schema(responses={200: OrderSerializer, **ERRORS})
    def get(self, request: Request, client_order_id: str) -> Response:
        order = _own_by_client_id(user_of(request), client_order_id)
        return Response(OrderSerializer(order).data)

    @extend_schema(responses={202: OrderSerializer, **ERRORS})
    def delete(self, request: Request, client_order_id: str) -> Response:
        order = cancel_order(user=user_of(request), client_order_id=client_order_id)
        return Response(OrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class ReduceOrderApi(ApiView):
    """`POST`: lower an open order's remaining quantity, keeping its place in the book."""

    @extend_schema(request=ReduceOrderInput, responses={202: OrderSerializer, **ERRORS})
    def post(self, request: Request, order_id: str) -> Response:
        payload = ReduceOrderInput(data=body(request))
        payload.is_valid(raise_exception=True)
        order = reduce_order(
            user=user_of(request),
            order_id=_order_id(order_id),
            remaining_quantity=payload.validated_data["remaining_quantity"],
        )
        return Response(OrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class PlaceOrderBatchApi(ApiView):
    """`POST {"orders": [...]}`: place up to 20 orders, each on its own; every item gets a
    result (`ok` with the order, or its error) in the request's order."""

    @extend_schema(
        request=PlaceBatchInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: OpenApiResponse(description="{results: [{index, ok, order|error}]}"),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        user = user_of(request)

        def run() -> Response:
            items = _batch_items(request)
            return Response({"results": _each(items, lambda item: _place(user, item))})

        return idempotent(request, user=user, run=run)

    def order_count(self, request: Request) -> int:
        """Orders this request counts against the order rate limits: its items."""
        try:
            return len(_batch_items(request))
        except DomainError:
            return 1


class CancelOrderBatchApi(ApiView):
    """`POST {"orders": [{"order_id": 1} | {"client_order_id": "x"}, ...]}`: up to 20
    cancels, each on its own, with a result per item."""

    @extend_schema(
        request=CancelBatchInput,
        responses={
            200: OpenApiResponse(description="{results: [{index, ok, order|error}]}"),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        user = user_of(request)
        items = _batch_items(request)
        return Response({"results": _each(items, lambda item: _cancel(user, item))})


def _cancel(user: User, raw: object) -> Order:
    if not isinstance(raw, dict):
        raise InvalidParameter("Each item must be an object.", code="order_invalid")
    ref = OrderRefInput(data=raw)
    if not ref.is_valid():
        error = validation_error(ref.errors)
        raise InvalidParameter(error["message"], field=error["field"], code=error["code"])
    return cancel_order(
        user=user,
        order_id=ref.validated_data.get("order_id"),
        client_order_id=ref.validated_data.get("client_order_id"),
    )
