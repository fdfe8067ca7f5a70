"""Webhook delivery against a real HTTP receiver on loopback: signatures, retries with the
same event id, timeouts, redirects, capped reads, the back-off schedule, the circuit
breaker, a worker dying mid-delivery, and the SSRF guard at delivery time."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from accounts.services.webhooks import create_webhook_endpoint
from accounts.webhooks.deliver import (
    MAX_RESPONSE_BYTES,
    breaker_cooldown,
    claim_due,
    deliver_due_webhooks,
    record_outcome,
    retry_ceiling,
    retry_delay,
    send,
)
from accounts.webhooks.record import record_user_event
from tests.accounts.webhook_receiver import HUGE_BYTES, Receiver, start_receiver, stop_receiver

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
PENDING, DELIVERED, DEAD = (
    WebhookDeliveryStatus.PENDING,
    WebhookDeliveryStatus.DELIVERED,
    WebhookDeliveryStatus.DEAD,
)


def readme_verify() -> Any:
    """The README's verification function, executed as written."""
    text = README.read_text()
    block = re.search(
        r"<!-- webhook-verify -->\n```python\n(.*?)```\n<!-- /webhook-verify -->", text, re.S
    )
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)  # noqa: S102 - our own README's example
    return namespace["verify"]


@pytest.fixture
def webhook_settings(settings: Any) -> Any:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOKS_READ_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOKS_MAX_ATTEMPTS = 4
    settings.WEBHOOKS_BREAKER_THRESHOLD = 3
    settings.WEBHOOKS_BREAKER_COOLDOWN_SECONDS = 60
    settings.WEBHOOKS_LEASE_SECONDS = 30
    return settings


@pytest.fixture
def receiver(webhook_settings: Any) -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    stop_receiver(server)


def endpoint_for(user: User, url: str, events: tuple[str, ...] = ("deposit",)) -> tuple[int, str]:
    created = create_webhook_endpoint(user=user, url=url, events=list(events))
    return created.endpoint.pk, created.secret


def event(user: User, n: int = 1, event_type: str = "deposit") -> str:
    event_id = f"{event_type}:{n}:credited"
    record_user_event(
        user_id=user.pk,
        event_type=event_type,
        event_id=event_id,
        payload={"id": n, "amount": "12.50"},
    )
    return event_id


def make_due() -> None:
    """Time travel for the retry schedule: every pending row becomes due now."""
    WebhookDelivery.objects.filter(status=PENDING).update(next_attempt_at=timezone.now())


def test_a_delivery_is_signed_and_verifies_with_the_readme_code(alice, receiver) -> None:
    _, secret = endpoint_for(alice, receiver.url("/ok"))
    event_id = event(alice)

    assert deliver_due_webhooks() == 1

    (request,) = receiver.requests
    verify = readme_verify()
    assert verify(secret, request.headers, request.body) is True
    assert verify("whsec_wrong", request.headers, request.body) is False
    assert verify(secret, request.headers, request.body + b" ") is False
    old = {**dict(request.headers.items()), "X-Exchange-Timestamp": "1000"}
    assert verify(secret, old, request.body) is False
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Exchange-Event-Id"] == event_id
    envelope = json.loads(request.body)
    assert envelope["id"] == event_id
    assert envelope["type"] == "deposit"
    assert envelope["data"] == {"id": 1, "amount": "12.50"}
    assert isinstance(envelope["created"], int)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (DELIVERED, 1, 200)
    assert row.delivered_at is not None


def test_failures_are_retried_with_the_same_event_id_until_delivered(alice, receiver) -> None:
    endpoint_for(alice, receiver.url("/flaky/2"))
    event_id = event(alice)

    for _ in range(3):
        deliver_due_webhooks()
        make_due()

    bodies = receiver.bodies("/flaky/2")
    assert len(bodies) == 3
    assert {json.loads(b)["id"] for b in bodies} == {event_id}
    assert {r.headers["X-Exchange-Event-Id"] for r in receiver.requests} == {event_id}
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        DELIVERED,
        3,
        200,
        "",
    )


def test_a_failed_attempt_waits_for_the_back_off(alice, receiver) -> None:
    endpoint_for(alice, receiver.url("/down"))
    event(alice)
    before = timezone.now()

    deliver_due_webhooks()
    deliver_due_webhooks()  # not due yet: no second request

    assert len(receiver.requests) == 1
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (PENDING, 1, 500)
    assert row.last_error.startswith("HTTP 500: down for maintenance")
    assert before + timedelta(seconds=1) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=retry_ceiling(1))


def test_an_event_is_dead_after_the_last_attempt_and_never_lost(alice, receiver) -> None:
    endpoint_for(alice, receiver.url("/down"))
    event(alice)
    WebhookEndpoint.objects.update(consecutive_failures=0)

    for _ in range(6):  # more rounds than attempts: a dead row is not tried again
        deliver_due_webhooks()
        WebhookEndpoint.objects.update(consecutive_failures=0, open_until=None)
        make_due()

    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (DEAD, 4)
    assert len(receiver.requests) == 4


def test_a_slow_receiver_times_out_and_is_retried(alice, receiver) -> None:
    receiver.slow_seconds = 2.0
    endpoint_for(alice, receiver.url("/slow"))
    event(alice)
    started = time.monotonic()

    deliver_due_webhooks()

    assert time.monotonic() - started < 1.8  # the 0.5 s read timeout, not the receiver
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (PENDING, 1, None)
    assert row.last_error.startswith("timeout")


def test_a_redirect_is_not_followed_and_counts_as_a_failure(alice, receiver) -> None:
    endpoint_for(alice, receiver.url("/redirect"))
    event(alice)

    deliver_due_webhooks()

    assert [r.path for r in receiver.requests] == ["/redirect"]  # /ok never asked
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (PENDING, 1, 302)


@pytest.mark.parametrize(
    ("_case", "path", "status"), [("ok", "/huge", 200), ("error", "/huge-error", 500)]
)
def test_a_huge_answer_is_read_only_up_to_the_cap(alice, receiver, _case, path, status) -> None:
    endpoint_for(alice, receiver.url(path))
    event(alice)

    deliver_due_webhooks()

    row = WebhookDelivery.objects.get()
    assert row.last_status_code == status
    assert row.status == (DELIVERED if status == 200 else PENDING)
    assert len(row.last_error) <= 200
    deadline = time.monotonic() + 5
    while not receiver.huge_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    # The client hung up long before the 4 MiB were all taken (socket buffers aside).
    assert receiver.huge_sent
    assert receiver.huge_sent[0] < HUGE_BYTES
    assert MAX_RESPONSE_BYTES == 64 * 1024


def test_the_back_off_schedule() -> None:
    ceilings = [retry_ceiling(n) for n in range(1, 16)]
    assert ceilings[:11] == [10 * 2**k for k in range(11)]  # 10 s ... 10,240 s
    assert ceilings[11:] == [4 * 3600.0] * 4
    assert sum(ceilings) == 78_070  # the 15 waits of 16 attempts: at most ~21.7 h
    rng = random.Random(7)
    for attempts in range(1, 30):
        for _ in range(50):
            delay = retry_delay(attempts, rng=rng).total_seconds()
            assert 1.0 <= delay <= max(1.0, retry_ceiling(attempts))
    # Full jitter: the draws spread over the whole range, not around one value.
    draws = [retry_delay(12, rng=rng).total_seconds() for _ in range(400)]
    assert min(draws) < 0.1 * 14400
    assert max(draws) > 0.9 * 14400
    with pytest.raises(ValueError, match="attempts"):
        retry_ceiling(0)


def test_the_breaker_cooldown_grows_and_is_capped(webhook_settings) -> None:
    assert breaker_cooldown(3) == timedelta(seconds=60)
    assert breaker_cooldown(4) == timedelta(seconds=120)
    assert breaker_cooldown(5) == timedelta(seconds=240)
    assert breaker_cooldown(40) == timedelta(hours=1)


def test_the_breaker_opens_holds_events_without_counting_and_closes(alice, receiver) -> None:
    endpoint_id, _ = endpoint_for(alice, receiver.url("/flaky/3"))
    for n in range(1, 6):
        event(alice, n)

    deliver_due_webhooks()  # 3 failures open the breaker; the other 2 rows are handed back

    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.consecutive_failures == 3
    assert endpoint.is_open
    assert len(receiver.requests) == 3
    rows = WebhookDelivery.objects.order_by("pk")
    assert [r.attempts for r in rows] == [1, 1, 1, 0, 0]
    assert {r.status for r in rows} == {PENDING}

    make_due()
    deliver_due_webhooks()  # open: nothing is attempted, nothing counted
    assert len(receiver.requests) == 3
    assert [r.attempts for r in WebhookDelivery.objects.order_by("pk")] == [1, 1, 1, 0, 0]

    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        open_until=timezone.now() - timedelta(seconds=1)
    )
    make_due()
    claims = claim_due()
    assert len(claims) == 1  # half-open: one probe
    leased = WebhookDelivery.objects.filter(next_attempt_at__gt=timezone.now())
    assert list(leased.values_list("pk", flat=True)) == [claims[0].delivery_id]
    assert claim_due() == []  # the endpoint is held while its probe is in flight
    record_outcome(claims[0], send(claims[0]))  # /flaky/3's fourth request: 200

    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.open_until) == (0, None)
    deliver_due_webhooks()
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DELIVERED}
    assert len(receiver.requests) == 8  # 3 failures, the probe, the other 4
    assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 5


def test_a_failed_probe_opens_the_breaker_for_longer(alice, receiver) -> None:
    endpoint_id, _ = endpoint_for(alice, receiver.url("/down"))
    event(alice, 1)
    event(alice, 2)
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=3)

    deliver_due_webhooks()

    assert len(receiver.requests) == 1  # the probe only
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.consecutive_failures == 4
    assert endpoint.open_until is not None
    assert endpoint.open_until > timezone.now() + timedelta(seconds=100)  # 120 s


def test_a_worker_dying_mid_delivery_leaves_the_row_to_the_next_after_the_lease(
    alice, receiver, webhook_settings
) -> None:
    webhook_settings.WEBHOOKS_LEASE_SECONDS = 0.3
    endpoint_for(alice, receiver.url("/ok"))
    event_id = event(alice)

    (claim,) = claim_due()
    send(claim)  # ... and the worker dies before recording the outcome
    assert claim_due() == []  # leased: no other worker takes it meanwhile
    time.sleep(0.4)

    assert deliver_due_webhooks() == 1

    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (DELIVERED, 1)
    assert [r.headers["X-Exchange-Event-Id"] for r in receiver.requests] == [event_id] * 2
    # The dead worker's late record (its lease is gone) changes nothing.
    record_outcome(claim, send(claim).__class__(500, "late"))
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DELIVERED, 1)


@pytest.mark.parametrize(
    ("_case", "url"),
    [
        ("loopback", "https://127.0.0.1:9/hook"),
        ("private", "https://10.1.2.3/hook"),
        ("link-local", "https://169.254.169.254/latest/meta-data"),
        ("ipv6-loopback", "https://[::1]:9/hook"),
    ],
)
def test_delivery_refuses_a_private_target_when_the_setting_is_off(
    alice, webhook_settings, _case, url
) -> None:
    endpoint_for(alice, url)  # registered while allowed (a private deployment) ...
    event(alice)
    webhook_settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False  # ... then forbidden

    deliver_due_webhooks()

    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (PENDING, 1, None)
    assert row.last_error.startswith("refused: Webhooks cannot be sent to")


def test_the_task_delivers(alice, receiver) -> None:
    from accounts.tasks import deliver_webhooks_task

    endpoint_for(alice, receiver.url("/ok"))
    event(alice)

    deliver_webhooks_task.apply()  # what a worker runs for beat's message

    assert WebhookDelivery.objects.get().status == DELIVERED


def test_a_host_name_is_resolved_checked_and_sent_as_the_host_header(alice, receiver) -> None:
    port = receiver.server.server_address[1]
    endpoint_for(alice, f"http://localhost:{port}/ok")
    event(alice)

    deliver_due_webhooks()

    (request,) = receiver.requests
    assert request.headers["Host"] == f"localhost:{port}"
    assert WebhookDelivery.objects.get().status == DELIVERED


def test_old_finished_deliveries_are_purged_and_pending_ones_kept(alice, receiver) -> None:
    from accounts.tasks import purge_webhook_deliveries

    endpoint_for(alice, receiver.url("/ok"))
    for n in range(3):
        event(alice, n)
    old = timezone.now() - timedelta(days=31)
    rows = list(WebhookDelivery.objects.order_by("pk"))
    WebhookDelivery.objects.filter(pk=rows[0].pk).update(status=DELIVERED, created_at=old)
    WebhookDelivery.objects.filter(pk=rows[1].pk).update(status=DEAD, created_at=old)
    WebhookDelivery.objects.filter(pk=rows[2].pk).update(created_at=old)  # still pending

    assert purge_webhook_deliveries() == 2

    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [rows[2].pk]


def test_a_row_whose_lease_would_end_mid_request_is_handed_back_unsent(
    alice, receiver, webhook_settings
) -> None:
    webhook_settings.WEBHOOKS_LEASE_SECONDS = 1.6  # one attempt's bound is 1.5 s here
    receiver.slow_seconds = 0.3
    endpoint_for(alice, receiver.url("/slow"))
    event(alice, 1)
    event(alice, 2)

    deliver_due_webhooks(budget_seconds=0.1)  # one batch: the first row, then time is up

    assert len(receiver.requests) == 1
    first, second = WebhookDelivery.objects.order_by("pk")
    assert (first.status, first.attempts) == (DELIVERED, 1)
    assert (second.status, second.attempts) == (PENDING, 0)  # handed back, not counted
    assert second.next_attempt_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_take_one_probe_between_them(alice, webhook_settings) -> None:
    import threading

    from django.db import connection

    endpoint_id, _ = endpoint_for(alice, "http://127.0.0.1:9/hook")
    for n in range(1, 5):
        event(alice, n)
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=3)
    barrier = threading.Barrier(2)
    claimed: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            claimed.extend(c.delivery_id for c in claim_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(claimed) == 1


def test_every_event_ends_delivered_or_dead_and_none_is_lost(alice, bob, receiver) -> None:
    """Four receivers (healthy, flaky, redirecting, down), twelve events: run the workers
    until nothing is pending, travelling through the back-off and the breaker's cool-down."""
    for user, path in ((alice, "/ok"), (alice, "/flaky/5"), (bob, "/redirect"), (bob, "/down")):
        endpoint_for(user, receiver.url(path))
    for n in range(1, 4):
        event(alice, n)
        event(bob, n)
    expected = {
        "/ok": {f"deposit:{n}:credited" for n in (1, 2, 3)},
        "/flaky/5": {f"deposit:{n}:credited" for n in (1, 2, 3)},
        "/redirect": {f"deposit:{n}:credited" for n in (1, 2, 3)},
        "/down": {f"deposit:{n}:credited" for n in (1, 2, 3)},
    }

    for _ in range(40):
        if not WebhookDelivery.objects.filter(status=PENDING).exists():
            break
        deliver_due_webhooks()
        make_due()
        WebhookEndpoint.objects.update(open_until=timezone.now() - timedelta(seconds=1))

    rows = WebhookDelivery.objects.select_related("endpoint")
    assert {row.status for row in rows} <= {DELIVERED, DEAD}
    assert rows.count() == 12
    for row in rows:
        path = row.endpoint.url.split(str(receiver.server.server_address[1]), 1)[1]
        seen = [json.loads(body)["id"] for body in receiver.bodies(path)]
        assert row.event_id in seen  # every event reached its receiver at least once
        assert seen.count(row.event_id) == row.attempts
        assert {json.loads(b)["id"] for b in receiver.bodies(path)} == expected[path]
        if path in ("/ok", "/flaky/5"):
            assert row.status == DELIVERED
        else:
            assert (row.status, row.attempts) == (DEAD, 4)
