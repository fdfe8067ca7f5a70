"""Periodic housekeeping of the accounts app (scheduled in exchange/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.models import IdempotencyRecord, WebhookDelivery, WebhookDeliveryStatus
from accounts.webhooks.deliver import deliver_due_webhooks

PURGE_BATCH = 10_000


def purge_idempotency_records() -> int:
    """Delete Idempotency-Key records older than IDEMPOTENCY_KEY_TTL_HOURS, in batches so no
    statement holds many row locks; returns how many were deleted. A key that old is claimed
    afresh anyway (exchange/api/v1/idempotency.py), so deleting it changes no answer."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids, created_at__lt=cutoff).delete()[0]


@shared_task(name="accounts.tasks.purge_idempotency_records", ignore_result=True)
def purge_idempotency_records_task() -> None:
    """Beat, hourly: purge_idempotency_records."""
    purge_idempotency_records()


@shared_task(name="accounts.tasks.deliver_webhooks", ignore_result=True)
def deliver_webhooks_task() -> None:
    """Beat, every few seconds: deliver due webhook events (accounts.webhooks.deliver).
    Overlapping runs on several workers take different rows (SKIP LOCKED and a lease)."""
    deliver_due_webhooks()


def purge_webhook_deliveries() -> int:
    """Delete delivered and dead webhook deliveries older than WEBHOOKS_RETENTION_DAYS, in
    batches; returns how many. Pending rows are never purged, whatever their age. An event
    recorded again after its row is gone would be sent again, but events are only recorded
    in the transaction of their change, which never runs twice."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    finished = (WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.DEAD)
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(created_at__lt=cutoff, status__in=finished)
            .order_by("pk")
            .values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            return deleted
        deleted += WebhookDelivery.objects.filter(pk__in=ids, status__in=finished).delete()[0]


@shared_task(name="accounts.tasks.purge_webhook_deliveries", ignore_result=True)
def purge_webhook_deliveries_task() -> None:
    """Beat, hourly: purge_webhook_deliveries."""
    purge_webhook_deliveries()
