"""Expired Idempotency-Key records are purged by the hourly task; fresh ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import IdempotencyRecord, User
from accounts.tasks import purge_idempotency_records
from exchange.celery import app

pytestmark = pytest.mark.django_db


def test_only_expired_records_are_purged(alice: User, settings) -> None:
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    now = timezone.now()
    old = [
        IdempotencyRecord.objects.create(
            user=alice, key=f"old-{i}", fingerprint="f" * 64, created_at=now - timedelta(hours=25)
        )
        for i in range(3)
    ]
    fresh = IdempotencyRecord.objects.create(
        user=alice, key="fresh", fingerprint="f" * 64, created_at=now - timedelta(hours=23)
    )
    assert purge_idempotency_records() == len(old)
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert purge_idempotency_records() == 0


def test_the_purge_is_scheduled_hourly() -> None:
    entry = app.conf.beat_schedule["accounts.purge_idempotency_records"]
    assert entry["task"] == "accounts.tasks.purge_idempotency_records"
    assert entry["schedule"] == 3600.0
    assert "accounts.tasks.purge_idempotency_records" in app.tasks
