"""The webhooks page: list, register (secret shown once), delete, deliveries and replay;
bad input re-renders the form with the error and changes nothing; another user's endpoint
is a 404; Persian is translated."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, User, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from accounts.services.webhooks import create_webhook_endpoint
from accounts.webhooks.record import record_user_event

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _private_targets(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def state() -> dict[str, Any]:
    return {
        "endpoints": list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "url")),
        "deliveries": list(
            WebhookDelivery.objects.order_by("pk").values_list("pk", "status", "next_attempt_at")
        ),
        "audit": AuditLog.objects.filter(action__startswith="webhook.").count(),
    }


def test_the_api_keys_page_links_to_webhooks(client: Client, alice: User) -> None:
    body = signed_in(client, alice).get(reverse("api_keys")).content.decode()

    assert f'href="{reverse("webhooks")}"' in body


def test_register_shows_the_secret_once(client: Client, alice: User) -> None:
    signed_in(client, alice)

    answer = client.post(
        reverse("webhooks"), {"hook-url": URL, "hook-events": ["trade", "deposit"]}
    )

    assert answer.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    body = answer.content.decode()
    secret = body.split('id="new-webhook-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    assert "no-store" in answer["Cache-Control"] or "no-cache" in answer["Cache-Control"]
    assert endpoint.events == ["trade", "deposit"]
    again = client.get(reverse("webhooks")).content.decode()
    assert secret not in again
    assert "127.0.0.1:9/hook" in again


@pytest.mark.parametrize(
    ("_case", "data", "message"),
    [
        ("no events", {"hook-url": URL}, "Choose at least one event type."),
        ("unknown event", {"hook-url": URL, "hook-events": ["nope"]}, "Select a valid choice"),
        ("no url", {"hook-events": ["trade"]}, "This field is required."),
        ("ftp", {"hook-url": "ftp://x.example/", "hook-events": ["trade"]}, "Only http and https"),
        (
            "too long",
            {"hook-url": "http://a.example/" + "a" * 2100, "hook-events": ["trade"]},
            "at most",
        ),
    ],
)
def test_bad_input_shows_the_error_and_changes_nothing(
    client: Client, alice: User, _case, data, message
) -> None:
    signed_in(client, alice)
    before = state()

    answer = client.post(reverse("webhooks"), data)

    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert "new-webhook-secret" not in answer.content.decode()
    assert state() == before


def test_a_private_target_is_refused_on_the_page(client: Client, alice: User, settings) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = True
    signed_in(client, alice)
    before = state()

    answer = client.post(
        reverse("webhooks"), {"hook-url": "http://169.254.169.254/", "hook-events": ["trade"]}
    )

    assert answer.status_code == 400
    assert "Webhooks cannot be sent to 169.254.169.254" in answer.content.decode()
    assert state() == before


def test_deliveries_page_and_replay(client: Client, alice: User) -> None:
    endpoint = create_webhook_endpoint(user=alice, url=URL, events=["deposit"]).endpoint
    record_user_event(
        user_id=alice.pk, event_type="deposit", event_id="deposit:7:credited", payload={"id": 7}
    )
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status=WebhookDeliveryStatus.DEAD, attempts=16)
    signed_in(client, alice)

    page = client.get(reverse("webhook_deliveries", args=[endpoint.pk]))
    replayed = client.post(reverse("webhook_replay", args=[endpoint.pk, delivery.pk]))

    assert page.status_code == 200
    assert "deposit:7:credited" in page.content.decode()
    assert replayed.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_delete(client: Client, alice: User) -> None:
    endpoint = create_webhook_endpoint(user=alice, url=URL, events=["deposit"]).endpoint

    answer = signed_in(client, alice).post(reverse("webhook_delete", args=[endpoint.pk]))

    assert answer.status_code == 302
    assert WebhookEndpoint.objects.exists() is False


def test_another_users_endpoint_is_not_found(client: Client, alice: User, mallory: User) -> None:
    endpoint = create_webhook_endpoint(user=alice, url=URL, events=["deposit"]).endpoint
    record_user_event(
        user_id=alice.pk, event_type="deposit", event_id="deposit:7:credited", payload={}
    )
    delivery = WebhookDelivery.objects.get()
    signed_in(client, mallory)
    before = state()

    answers = [
        client.get(reverse("webhook_deliveries", args=[endpoint.pk])),
        client.post(reverse("webhook_delete", args=[endpoint.pk])),
        client.post(reverse("webhook_replay", args=[endpoint.pk, delivery.pk])),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert state() == before
    assert "127.0.0.1:9/hook" not in client.get(reverse("webhooks")).content.decode()


def test_delete_and_replay_need_post(client: Client, alice: User) -> None:
    endpoint = create_webhook_endpoint(user=alice, url=URL, events=["deposit"]).endpoint
    signed_in(client, alice)

    assert client.get(reverse("webhook_delete", args=[endpoint.pk])).status_code == 405
    assert WebhookEndpoint.objects.exists()


def test_anonymous_is_sent_to_login(client: Client) -> None:
    answer = client.get(reverse("webhooks"))

    assert answer.status_code == 302
    assert "login" in answer["Location"]


def test_persian_page_is_translated(client: Client, alice: User) -> None:
    signed_in(client, alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"

    body = client.get(reverse("webhooks")).content.decode()

    assert "وب‌هوک‌ها" in body  # noqa: RUF001 - Persian "Webhooks"
    assert "افزودن نقطه" in body  # "Add endpoint"
    assert "Add endpoint" not in body
    refused = client.post(reverse("webhooks"), {"hook-url": "ftp://x/", "hook-events": ["trade"]})
    assert "فقط نشانی‌های http و https مجاز است." in refused.content.decode()
