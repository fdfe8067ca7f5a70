"""Input serializers shared by v1 views, and the error body of a refused item.

Inputs refuse unknown names (a typo such as `qty` must not place an order without its
quantity) except the signing layer's own (`timestamp`, `recvWindow`, `signature`), which a
form-encoded signed body carries. Amounts are strings, parsed by the services' own parser
(accounts.amounts via trading.validation), so every malformed number gets one error code
on every path.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from exchange.api.v1.base import StrictCharField
from exchange.errors import DomainError

SIGNING_NAMES = frozenset({"timestamp", "recvWindow", "signature"})
MAX_BATCH = 20  # the bound: one signed request, one accept batch of the engine


class UnknownField(DomainError):
    code = "field_unknown"


class StrictSerializer(serializers.Serializer):
    """A Serializer that refuses names it does not declare."""

    def to_internal_value(self, data: Any) -> Any:  # Any: DRF's signature
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields) - SIGNING_NAMES)
            if unknown:
                raise UnknownField(f"Unknown field {unknown[0]!r}.", field=unknown[0][:64])
        return super().to_internal_value(data)


def text(**kwargs: Any) -> StrictCharField:
    """An optional string input of at most 64 characters (Any: CharField's options)."""
    kwargs.setdefault("required", False)
    kwargs.setdefault("max_length", 64)
    return StrictCharField(**kwargs)


class PlaceOrderInput(StrictSerializer):
    market = text(required=True, max_length=32)
    side = text(required=True)
    type = text()
    time_in_force = text()
    price = text()
    quantity = text()
    quote_amount = text()
    stop_price = text()
    client_order_id = text()
    stp_mode = text()


class OrderRefInput(StrictSerializer):
    """One order named by `order_id` or `client_order_id` (exactly one)."""

    order_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    client_order_id = text()


class ReduceOrderInput(StrictSerializer):
    remaining_quantity = text(required=True)


class PlaceBatchInput(serializers.Serializer):
    """The schema of a batch (its items are parsed one by one, each with its own result)."""

    orders = PlaceOrderInput(many=True)


class CancelBatchInput(serializers.Serializer):
    """The schema of a cancel batch."""

    orders = OrderRefInput(many=True)


class WithdrawalInput(StrictSerializer):
    asset = text(required=True, max_length=12)
    amount = text(required=True)
    address = text(required=True, max_length=200)
    totp_code = text(required=True, max_length=16)


def validation_error(detail: Any, prefix: str | None = None) -> dict[str, Any]:
    """The first error of a serializer's `errors` as a v1 error body (Any: DRF's detail)."""
    if isinstance(detail, dict):
        for name, value in detail.items():
            field = None if name == "non_field_errors" else str(name)
            if prefix and field:
                field = f"{prefix}.{field}"
            return validation_error(value, field or prefix)
    if isinstance(detail, list) and detail:
        return validation_error(detail[0], prefix)
    return {
        "code": getattr(detail, "code", None) or "invalid",
        "message": str(detail),
        "field": prefix,
    }
