"""Staff see webhook endpoints and deliveries (filters, search), never secrets, and replay
deliveries through the audited service; the admin cannot add, edit or delete them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, User, WebhookDelivery, WebhookDeliveryStatus
from accounts.services.webhooks import create_webhook_endpoint
from accounts.webhooks.record import record_user_event
from tests.accounts.test_admin import run_action
from tests.accounts.test_admin import staff_client as staff_client  # the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_delivery(settings, alice: User) -> tuple[str, WebhookDelivery]:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    created = create_webhook_endpoint(user=alice, url="http://127.0.0.1:9/h", events=["deposit"])
    record_user_event(
        user_id=alice.pk, event_type="deposit", event_id="deposit:5:credited", payload={}
    )
    WebhookDelivery.objects.update(status=WebhookDeliveryStatus.DEAD, attempts=16)
    return created.secret, WebhookDelivery.objects.get()


def test_staff_see_endpoints_and_deliveries_without_secrets(
    staff_client: Client, dead_delivery
) -> None:
    secret, delivery = dead_delivery
    pages = [
        reverse("admin:accounts_webhookendpoint_changelist"),
        reverse("admin:accounts_webhookendpoint_change", args=[delivery.endpoint_id]),
        reverse("admin:accounts_webhookdelivery_changelist") + "?status__exact=dead",
        reverse("admin:accounts_webhookdelivery_changelist") + "?q=deposit:5",
        reverse("admin:accounts_webhookdelivery_changelist") + "?q=alice@example.com",
        reverse("admin:accounts_webhookdelivery_change", args=[delivery.pk]),
    ]

    for url in pages:
        answer = staff_client.get(url)
        assert answer.status_code == 200, url
        body = answer.content.decode()
        assert secret not in body
        assert "secret_encrypted" not in body
    assert "deposit:5:credited" in staff_client.get(pages[3]).content.decode()
    assert (
        "deposit:5:credited"
        not in staff_client.get(
            reverse("admin:accounts_webhookdelivery_changelist") + "?status__exact=delivered"
        ).content.decode()
    )
    assert staff_client.get(reverse("admin:accounts_webhookdelivery_add")).status_code == 403


def test_staff_replay_goes_through_the_audited_service(
    staff_client: Client, staff: User, dead_delivery
) -> None:
    _, delivery = dead_delivery

    run_action(staff_client, "webhookdelivery", "replay_selected", [delivery.pk])

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    row = AuditLog.objects.get(action="webhook.replayed")
    assert (row.actor, row.ip_address, row.target_id) == (staff, "127.0.0.1", str(delivery.pk))
    assert row.details == {"event_id": "deposit:5:credited", "endpoint_id": delivery.endpoint_id}


def test_deleting_through_the_admin_is_refused(staff_client: Client, dead_delivery) -> None:
    _, delivery = dead_delivery

    answer = staff_client.post(
        reverse("admin:accounts_webhookdelivery_delete", args=[delivery.pk]), {"post": "yes"}
    )

    assert answer.status_code == 403
    assert WebhookDelivery.objects.filter(pk=delivery.pk).exists()
