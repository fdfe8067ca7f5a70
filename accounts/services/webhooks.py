"""Partner webhook endpoints: register, list, delete; deliveries: list, replay.

The signing secret is generated here, stored encrypted (accounts.webhooks.signing) and
returned once, by `create_webhook_endpoint`. Another user's endpoint or delivery looks
exactly like a missing one (NotFound). Every refusal raises before anything is written.
Recording and delivering events: accounts.webhooks.record and .deliver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.errors import InvalidInput, NotFound, PermissionDeniedError
from accounts.models import (
    User,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)
from accounts.services.audit import ActorContext, record_audit
from accounts.webhooks.signing import encrypt_secret, new_secret
from accounts.webhooks.targets import check_target, parse_url

MAX_ENDPOINTS_PER_USER = 10  # every endpoint is one more row settlement's statement joins
EVENT_TYPES: tuple[str, ...] = tuple(WebhookEventType.values)


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret: the one time the secret is readable."""

    endpoint: WebhookEndpoint
    secret: str


def check_events(events: object) -> list[str]:
    """The event types, validated and deduplicated in the canonical order. Pure."""
    if not isinstance(events, list | tuple) or not events:
        raise InvalidInput(
            "Choose at least one event type: " + ", ".join(EVENT_TYPES) + ".",
            field="events",
            code="events_required",
        )
    chosen = set()
    for event in events:
        if not isinstance(event, str) or event not in EVENT_TYPES:
            shown = event[:32] if isinstance(event, str) else type(event).__name__
            raise InvalidInput(
                f"Unknown event type {shown!r}; use " + ", ".join(EVENT_TYPES) + ".",
                field="events",
                code="event_type_unknown",
            )
        chosen.add(event)
    return [event for event in EVENT_TYPES if event in chosen]


def create_webhook_endpoint(
    *, user: User, url: str, events: Sequence[str], context: ActorContext | None = None
) -> CreatedEndpoint:
    """Register a receiver for `events`; return it with its secret (shown once).

    Checks the URL (scheme, length, SSRF: accounts.webhooks.targets, which resolves the
    host) and the events; at most MAX_ENDPOINTS_PER_USER per user; frozen users may
    register too (events only tell). Audited as webhook.created. On any error nothing is
    written.
    """
    clean_events = check_events(list(events) if isinstance(events, list | tuple) else events)
    clean_url = url.strip() if isinstance(url, str) else url
    parse_url(clean_url)  # the cheap checks first: no DNS lookup for a malformed URL
    check_target(clean_url)
    if WebhookEndpoint.objects.filter(user=user).count() >= MAX_ENDPOINTS_PER_USER:
        raise InvalidInput(
            f"You have {MAX_ENDPOINTS_PER_USER} webhook endpoints; delete one first.",
            code="too_many_endpoints",
        )
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            user=user, url=clean_url, events=clean_events, secret_encrypted=encrypt_secret(secret)
        )
        record_audit(
            action="webhook.created",
            actor=user,
            target=endpoint,
            details={"url": clean_url[:200], "events": clean_events},
            context=context,
        )
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def delete_webhook_endpoint(
    *, user: User, endpoint_id: int, context: ActorContext | None = None
) -> None:
    """Delete one of the user's endpoints and its deliveries (nothing more is sent to it;
    an attempt in flight finishes, its result is dropped). Audited as webhook.deleted."""
    with transaction.atomic():
        endpoint = get_webhook_endpoint(user=user, endpoint_id=endpoint_id)
        record_audit(
            action="webhook.deleted",
            actor=user,
            target=endpoint,
            details={"url": endpoint.url[:200]},
            context=context,
        )
        endpoint.delete()


def replay_webhook_delivery(*, user: User, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Send one of the user's deliveries again: PENDING, due now, a fresh retry schedule.
    Works for DELIVERED and DEAD rows (and a PENDING one simply becomes due now)."""
    endpoint = get_webhook_endpoint(user=user, endpoint_id=endpoint_id)
    delivery = WebhookDelivery.objects.filter(pk=_id(delivery_id), endpoint=endpoint).first()
    if delivery is None:
        raise NotFound("No such delivery.", field="delivery_id")
    return _apply_replay(delivery)


def staff_replay_webhook_delivery(
    *, staff: User, delivery_id: int, context: ActorContext | None = None
) -> WebhookDelivery:
    """Replay any user's delivery on behalf of staff; audited as webhook.replayed."""
    if not staff.is_staff:
        raise PermissionDeniedError("Only staff can replay other users' deliveries.")
    delivery = WebhookDelivery.objects.filter(pk=_id(delivery_id)).first()
    if delivery is None:
        raise NotFound("No such delivery.", field="delivery_id")
    with transaction.atomic():
        replayed = _apply_replay(delivery)
        record_audit(
            action="webhook.replayed",
            actor=staff,
            target=delivery,
            details={"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id},
            context=context,
        )
    return replayed


def _apply_replay(delivery: WebhookDelivery) -> WebhookDelivery:
    # A row in flight gets a new due time, so the in-flight attempt's conditional UPDATE
    # (on its lease) matches nothing and cannot mark the replay delivered or dead.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        delivered_at=None,
    )
    delivery.refresh_from_db()
    return delivery


def get_webhook_endpoint(*, user: User, endpoint_id: int) -> WebhookEndpoint:
    """One of the user's endpoints; NotFound for a missing or someone else's."""
    endpoint = (
        WebhookEndpoint.objects.filter(user=user, pk=_id(endpoint_id))
        .defer("secret_encrypted")
        .first()
    )
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", field="webhook_id")
    return endpoint


def list_webhook_endpoints(*, user: User) -> QuerySet[WebhookEndpoint]:
    """The user's endpoints, newest first, without their secrets."""
    return WebhookEndpoint.objects.filter(user=user).defer("secret_encrypted").order_by("-pk")


def list_webhook_deliveries(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's deliveries, newest first."""
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-pk")


def _id(value: object) -> int:
    # Ids come from URLs and forms; anything but a positive int is simply not found.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        return 0
    return value
