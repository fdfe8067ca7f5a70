"""Partner webhooks in the v1 API (README "Webhooks"; accounts.services.webhooks).

`GET /webhooks` lists the user's endpoints; `POST /webhooks` `{"url", "events": [...]}`
registers one and answers its signing `secret`, the only time it is ever shown (a form body
may send `events` comma-separated). `DELETE /webhooks/{id}` deletes one with its
deliveries; `GET /webhooks/{id}/deliveries` pages its deliveries, newest first;
`POST /webhooks/{id}/deliveries/{delivery_id}/replay` makes one due again (delivered and
dead ones too). Another user's endpoint or delivery is a 404, like a missing one. The
`read` scope suffices: an endpoint only tells what the key could read anyway.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.http import actor_context
from accounts.models import WebhookDelivery, WebhookEndpoint
from accounts.services.webhooks import (
    EVENT_TYPES,
    create_webhook_endpoint,
    delete_webhook_endpoint,
    get_webhook_endpoint,
    list_webhook_deliveries,
    list_webhook_endpoints,
    replay_webhook_delivery,
)
from accounts.webhooks.targets import MAX_URL_CHARS
from exchange.api.v1.base import ApiView, StrictCharField, body, ms, user_of
from exchange.api.v1.inputs import StrictSerializer
from exchange.api.v1.orders import ERRORS
from exchange.api.v1.pagination import NewestFirst
from exchange.errors import NotFound


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    consecutive_failures = serializers.IntegerField()
    paused_until = serializers.SerializerMethodField(help_text="circuit breaker; ms or null")
    created_at = serializers.SerializerMethodField()

    def get_paused_until(self, endpoint: WebhookEndpoint) -> int | None:
        return ms(endpoint.open_until) if endpoint.is_open else None

    def get_created_at(self, endpoint: WebhookEndpoint) -> int | None:
        return ms(endpoint.created_at)


class CreatedWebhookSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="shown only in this answer")


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.SerializerMethodField()
    last_attempt_at = serializers.SerializerMethodField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.SerializerMethodField()
    delivered_at = serializers.SerializerMethodField()
    payload = serializers.JSONField()

    def get_next_attempt_at(self, row: WebhookDelivery) -> int | None:
        return ms(row.next_attempt_at) if row.status == "pending" else None

    def get_last_attempt_at(self, row: WebhookDelivery) -> int | None:
        return ms(row.last_attempt_at)

    def get_created_at(self, row: WebhookDelivery) -> int | None:
        return ms(row.created_at)

    def get_delivered_at(self, row: WebhookDelivery) -> int | None:
        return ms(row.delivered_at)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": list(EVENT_TYPES)},
        "description": "a form body may send one comma-separated string instead",
    }
)
class EventsField(serializers.Field):
    """A JSON list of event types, or (form bodies) one comma-separated string."""

    def to_internal_value(self, data: object) -> list[Any]:  # Any: judged by the service
        if isinstance(data, str):
            return [part.strip() for part in data.split(",") if part.strip()]
        if isinstance(data, list) and len(data) <= 2 * len(EVENT_TYPES):
            return data
        raise serializers.ValidationError(
            "events must be a list of event types: " + ", ".join(EVENT_TYPES) + ".",
            code="events_required",
        )

    def to_representation(self, value: list[str]) -> list[str]:
        return value


class CreateWebhookInput(StrictSerializer):
    url = StrictCharField(max_length=MAX_URL_CHARS + 64)  # the service says what is too long
    events = EventsField()


def _id(raw: str, field: str) -> int:
    """A path's id; anything but a plain id is a missing row, never a 500."""
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise NotFound("No such webhook endpoint or delivery.", field=field)
    return int(raw)


class WebhookListApi(ApiView):
    """`GET`: the user's webhook endpoints. `POST`: register one (the secret, once)."""

    required_scope = "read"

    @extend_schema(
        operation_id="webhooks_list",
        responses={
            200: inline_serializer("WebhookList", {"results": WebhookSerializer(many=True)}),
            **ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        rows = list_webhook_endpoints(user=user_of(request))
        return Response({"results": WebhookSerializer(rows, many=True).data})

    @extend_schema(
        operation_id="webhooks_create",
        request=CreateWebhookInput,
        responses={201: CreatedWebhookSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        payload = CreateWebhookInput(data=body(request))
        payload.is_valid(raise_exception=True)
        created = create_webhook_endpoint(
            user=user_of(request),
            url=payload.validated_data["url"],
            events=payload.validated_data["events"],
            context=actor_context(request._request),
        )
        data = dict(WebhookSerializer(created.endpoint).data)
        data["secret"] = created.secret
        response = Response(data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the secret must not sit in a cache
        return response


_WEBHOOK_ID = OpenApiParameter(
    "webhook_id", str, OpenApiParameter.PATH, pattern=r"^[0-9]{1,18}$", description="endpoint id"
)
_DELIVERY_ID = OpenApiParameter(
    "delivery_id", str, OpenApiParameter.PATH, pattern=r"^[0-9]{1,18}$", description="delivery id"
)


class WebhookDetailApi(ApiView):
    """`DELETE`: delete one of the user's endpoints and its deliveries."""

    required_scope = "read"

    @extend_schema(
        operation_id="webhooks_delete",
        parameters=[_WEBHOOK_ID],
        responses={204: OpenApiResponse(description="deleted"), **ERRORS},
    )
    def delete(self, request: Request, webhook_id: str) -> Response:
        delete_webhook_endpoint(
            user=user_of(request),
            endpoint_id=_id(webhook_id, "webhook_id"),
            context=actor_context(request._request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(ApiView):
    """`GET`: the endpoint's deliveries, newest first (cursor pages)."""

    required_scope = "read"

    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=[
            _WEBHOOK_ID,
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={
            200: inline_serializer(
                "WebhookDeliveryPage",
                {
                    "results": DeliverySerializer(many=True),
                    "next_cursor": serializers.CharField(
                        allow_null=True,
                        help_text="pass as `cursor` for the next page; null at the end",
                    ),
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        endpoint = get_webhook_endpoint(
            user=user_of(request), endpoint_id=_id(webhook_id, "webhook_id")
        )
        pages = NewestFirst()
        rows = pages.rows_of(list_webhook_deliveries(endpoint=endpoint), request, self)
        return Response(pages.answer(DeliverySerializer(rows, many=True).data))


class ReplayWebhookDeliveryApi(ApiView):
    """`POST`: make one delivery due now with a fresh retry schedule."""

    required_scope = "read"

    @extend_schema(
        operation_id="webhook_delivery_replay",
        request=None,
        parameters=[_WEBHOOK_ID, _DELIVERY_ID],
        responses={200: DeliverySerializer, **ERRORS},
    )
    def post(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        delivery = replay_webhook_delivery(
            user=user_of(request),
            endpoint_id=_id(webhook_id, "webhook_id"),
            delivery_id=_id(delivery_id, "delivery_id"),
        )
        return Response(DeliverySerializer(delivery).data)


urls: list[URLPattern] = [
    path("webhooks", WebhookListApi.as_view(), name="v1-webhooks"),
    path("webhooks/<str:webhook_id>", WebhookDetailApi.as_view(), name="v1-webhook"),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        WebhookDeliveryListApi.as_view(),
        name="v1-webhook-deliveries",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/replay",
        ReplayWebhookDeliveryApi.as_view(),
        name="v1-webhook-delivery-replay",
    ),
]
