"""The v1 webhook endpoints: register (secret once), list, delete, deliveries, replay;
every bad input is a clear {code, message, field} error that changes nothing, and another
user's endpoints and deliveries are 404s."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditLog, User, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from accounts.services.webhooks import create_webhook_endpoint
from accounts.webhooks.record import record_user_event
from tests.api.conftest import make_key

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _private_targets(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


def session(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def state() -> dict[str, Any]:
    return {
        "endpoints": list(
            WebhookEndpoint.objects.order_by("pk").values_list("pk", "user_id", "url", "events")
        ),
        "deliveries": list(
            WebhookDelivery.objects.order_by("pk").values_list(
                "pk", "status", "attempts", "next_attempt_at", "delivered_at"
            )
        ),
        "audit": AuditLog.objects.filter(action__startswith="webhook.").count(),
    }


def endpoint_with_delivery(user: User, n: int = 1) -> tuple[WebhookEndpoint, WebhookDelivery]:
    endpoint = create_webhook_endpoint(user=user, url=URL, events=["deposit"]).endpoint
    for i in range(n):
        record_user_event(
            user_id=user.pk,
            event_type="deposit",
            event_id=f"deposit:{i}:credited",
            payload={"id": i},
        )
    return endpoint, WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk").last()


def test_register_shows_the_secret_once_and_lists_without_it(alice) -> None:
    client = session(alice)

    created = client.post(
        "/api/v1/webhooks", {"url": URL, "events": ["trade", "order.update"]}, format="json"
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["order.update", "trade"]
    assert (body["url"], body["is_active"], body["paused_until"]) == (URL, True, None)
    assert created["Cache-Control"] == "no-store"
    listed = client.get("/api/v1/webhooks").json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert body["secret"] not in client.get("/api/v1/webhooks").content.decode()


def test_a_form_body_may_send_events_comma_separated(alice) -> None:
    answer = session(alice).post(
        "/api/v1/webhooks", {"url": URL, "events": "deposit, withdrawal"}, format="multipart"
    )
    # multipart is not a v1 body type: refused, nothing written
    assert answer.status_code == 415
    assert WebhookEndpoint.objects.exists() is False
    answer = session(alice).post(
        "/api/v1/webhooks",
        urlencode({"url": URL, "events": "deposit, withdrawal"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["events"] == ["deposit", "withdrawal"]


BAD_REGISTRATIONS = [
    ("no url", {"events": ["trade"]}, "required", "url"),
    ("url not a string", {"url": 5, "events": ["trade"]}, "invalid", "url"),
    ("no events", {"url": URL}, "required", "events"),
    ("events empty", {"url": URL, "events": []}, "events_required", "events"),
    ("events an object", {"url": URL, "events": {"a": 1}}, "events_required", "events"),
    ("unknown event", {"url": URL, "events": ["trades"]}, "event_type_unknown", "events"),
    ("unknown field", {"url": URL, "events": ["trade"], "secret": "x"}, "field_unknown", "secret"),
    ("ftp", {"url": "ftp://x.example/", "events": ["trade"]}, "url_scheme_invalid", "url"),
    (
        "too long",
        {"url": "http://a.example/" + "a" * 2100, "events": ["trade"]},
        "max_length",
        "url",
    ),
]


@pytest.mark.parametrize(("_case", "data", "code", "field"), BAD_REGISTRATIONS)
def test_bad_registrations_are_refused_and_change_nothing(alice, _case, data, code, field) -> None:
    before = state()

    answer = session(alice).post("/api/v1/webhooks", data, format="json")

    assert answer.status_code == 400, answer.content
    assert (answer.json()["code"], answer.json()["field"]) == (code, field)
    assert answer.json()["message"]
    assert state() == before


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x", "http://10.0.0.1/x", "http://169.254.169.254/", "http://[::1]/"]
)
def test_private_targets_are_refused_when_the_setting_is_off(alice, settings, url) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = True  # plain http allowed: the address is what is refused
    before = state()

    answer = session(alice).post(
        "/api/v1/webhooks", {"url": url, "events": ["trade"]}, format="json"
    )

    assert answer.status_code == 400
    assert (answer.json()["code"], answer.json()["field"]) == ("url_forbidden", "url")
    assert state() == before


def test_a_body_that_is_not_an_object_changes_nothing(alice) -> None:
    before = state()

    answer = session(alice).post("/api/v1/webhooks", ["x"], format="json")

    assert (answer.status_code, answer.json()["code"]) == (400, "body_invalid")
    assert state() == before


def test_delete_removes_the_endpoint_and_its_deliveries(alice) -> None:
    endpoint, _ = endpoint_with_delivery(alice)

    answer = session(alice).delete(f"/api/v1/webhooks/{endpoint.pk}")

    assert answer.status_code == 204
    assert WebhookEndpoint.objects.exists() is False
    assert WebhookDelivery.objects.exists() is False
    assert AuditLog.objects.filter(action="webhook.deleted").count() == 1


def test_another_users_endpoint_and_deliveries_are_not_found(alice, mallory) -> None:
    endpoint, delivery = endpoint_with_delivery(alice)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDeliveryStatus.DEAD)
    own, _ = endpoint_with_delivery(mallory)
    before = state()
    client = session(mallory)

    answers = [
        client.delete(f"/api/v1/webhooks/{endpoint.pk}"),
        client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries"),
        client.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/replay"),
        # her own endpoint id with alice's delivery id
        client.post(f"/api/v1/webhooks/{own.pk}/deliveries/{delivery.pk}/replay"),
    ]

    assert [a.status_code for a in answers] == [404] * 4
    assert {a.json()["code"] for a in answers} == {"not_found"}
    assert state() == before
    assert [row["id"] for row in client.get("/api/v1/webhooks").json()["results"]] == [own.pk]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/v1/webhooks/abc"),
        ("delete", "/api/v1/webhooks/99999999999999999999"),
        ("delete", "/api/v1/webhooks/0"),
        ("get", "/api/v1/webhooks/-1/deliveries"),
        ("post", "/api/v1/webhooks/1/deliveries/x/replay"),
        ("post", "/api/v1/webhooks/%0A/deliveries/1/replay"),
    ],
)
def test_malformed_ids_are_not_found(alice, method, path) -> None:
    endpoint_with_delivery(alice)
    before = state()

    answer = getattr(session(alice), method)(path)

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert state() == before


def test_deliveries_are_paged_newest_first(alice) -> None:
    endpoint, _ = endpoint_with_delivery(alice, n=3)
    client = session(alice)

    first = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries", {"limit": 2}).json()
    rest = client.get(
        f"/api/v1/webhooks/{endpoint.pk}/deliveries", {"limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [r["event_id"] for r in first["results"]] == ["deposit:2:credited", "deposit:1:credited"]
    assert [r["event_id"] for r in rest["results"]] == ["deposit:0:credited"]
    assert rest["next_cursor"] is None
    row = first["results"][0]
    assert (row["status"], row["attempts"], row["payload"]) == ("pending", 0, {"id": 2})
    bad = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries", {"cursor": "nope"})
    assert (bad.status_code, bad.json()["code"]) == (400, "cursor_invalid")
    bad = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries", {"limit": "0"})
    assert (bad.status_code, bad.json()["code"]) == (400, "limit_invalid")


@pytest.mark.parametrize("status", [WebhookDeliveryStatus.DEAD, WebhookDeliveryStatus.DELIVERED])
def test_replay_makes_a_dead_or_delivered_row_due_again(alice, status) -> None:
    endpoint, delivery = endpoint_with_delivery(alice)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, attempts=16)
    started = time.time()

    answer = session(alice).post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/replay")

    assert answer.status_code == 200, answer.content
    assert (answer.json()["status"], answer.json()["attempts"]) == ("pending", 0)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("pending", 0, None)
    assert abs(delivery.next_attempt_at.timestamp() - started) < 5


@pytest.mark.usefixtures("redis_db")
def test_a_signed_request_lists_the_keys_users_endpoints(alice, bob) -> None:
    endpoint_with_delivery(alice)
    endpoint_with_delivery(bob)
    key, secret = make_key(alice, trade=False)
    query = urlencode({"timestamp": int(time.time() * 1000), "recvWindow": 10000})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()

    answer = APIClient().get(
        f"/api/v1/webhooks?{query}&signature={signature}", HTTP_X_MBX_APIKEY=key
    )

    assert answer.status_code == 200, answer.content
    assert [row["url"] for row in answer.json()["results"]] == [URL]
    assert WebhookEndpoint.objects.filter(user=alice).count() == 1


def test_anonymous_requests_are_refused(alice) -> None:
    endpoint_with_delivery(alice)
    before = state()

    answers = [
        APIClient().get("/api/v1/webhooks"),
        APIClient().post("/api/v1/webhooks", {"url": URL, "events": ["trade"]}, format="json"),
    ]

    assert {a.status_code for a in answers} <= {401, 403}
    assert state() == before
