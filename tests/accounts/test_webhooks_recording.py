"""Deposits and withdrawals record the user's webhook events in their own transaction,
once; registering an endpoint checks its URL (SSRF) and its events, and a refusal writes
nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.errors import DepositConflict, InvalidAmount
from accounts.models import AuditLog, WebhookDelivery, WebhookEndpoint
from accounts.services.deposits import credit_deposit
from accounts.services.webhooks import (
    MAX_ENDPOINTS_PER_USER,
    create_webhook_endpoint,
    delete_webhook_endpoint,
)
from accounts.services.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
    request_withdrawal,
)
from accounts.webhooks.signing import decrypt_secret
from exchange.errors import DomainError

pytestmark = pytest.mark.django_db

ADDRESS = "TXYZ1234567890"


@pytest.fixture
def private_ok(settings: Any) -> Any:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    return settings


def _endpoint(user, events, url="http://127.0.0.1:9/hook"):
    return create_webhook_endpoint(user=user, url=url, events=events).endpoint


def _events(endpoint) -> list[tuple[str, dict]]:
    return [
        (row.event_id, row.payload)
        for row in WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk")
    ]


def test_a_credited_deposit_is_recorded_once_for_subscribed_endpoints(
    alice, bob, usdt, private_ok
) -> None:
    deposits = _endpoint(alice, ["deposit", "withdrawal"])
    trades_only = _endpoint(alice, ["trade"])
    inactive = _endpoint(alice, ["deposit"])
    WebhookEndpoint.objects.filter(pk=inactive.pk).update(is_active=False)
    bobs = _endpoint(bob, ["deposit"])

    deposit = credit_deposit(user=alice, asset=usdt, amount=Decimal("12.5"), external_ref="tx1")
    again = credit_deposit(user=alice, asset=usdt, amount=Decimal("12.5"), external_ref="tx1")

    assert again.pk == deposit.pk
    assert _events(deposits) == [
        (
            f"deposit:{deposit.pk}:credited",
            {
                "id": deposit.pk,
                "asset": "USDT",
                "amount": "12.500000",
                "external_ref": "tx1",
                "status": "credited",
                "created_at": _events(deposits)[0][1]["created_at"],
            },
        )
    ]
    assert isinstance(_events(deposits)[0][1]["created_at"], int)
    assert _events(trades_only) == _events(inactive) == _events(bobs) == []


def test_a_refused_deposit_records_nothing(alice, bob, usdt, private_ok) -> None:
    endpoint = _endpoint(alice, ["deposit"])
    credit_deposit(user=bob, asset=usdt, amount=Decimal("1"), external_ref="tx1")

    with pytest.raises(DepositConflict):
        credit_deposit(user=alice, asset=usdt, amount=Decimal("1"), external_ref="tx1")
    with pytest.raises(InvalidAmount):
        credit_deposit(user=alice, asset=usdt, amount=Decimal("1.0000001"), external_ref="tx2")

    assert _events(endpoint) == []


@pytest.mark.parametrize(("_case", "outcome"), [("completed", "complete"), ("rejected", "reject")])
def test_each_withdrawal_state_change_is_recorded_once(
    alice_2fa, staff, usdt, limits, private_ok, _case, outcome
) -> None:
    from tests.conftest import fund

    endpoint = _endpoint(alice_2fa, ["withdrawal"])
    fund(alice_2fa, usdt, "500")

    withdrawal = request_withdrawal(
        user=alice_2fa, asset=usdt, amount=Decimal("100"), address=ADDRESS
    )
    approve_withdrawal(staff=staff, withdrawal_id=withdrawal.pk)
    if outcome == "complete":
        complete_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, external_txid="0xabc")
    else:
        reject_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, reason="address blocked")
    with pytest.raises(DomainError):  # a second decision applies nothing, records nothing
        approve_withdrawal(staff=staff, withdrawal_id=withdrawal.pk)

    events = _events(endpoint)
    assert [event_id for event_id, _ in events] == [
        f"withdrawal:{withdrawal.pk}:pending",
        f"withdrawal:{withdrawal.pk}:approved",
        f"withdrawal:{withdrawal.pk}:{_case}",
    ]
    first, last = events[0][1], events[-1][1]
    assert (first["amount"], first["fee"], first["status"], first["address"]) == (
        "100.000000",
        "1.000000",
        "pending",
        ADDRESS,
    )
    assert first["decided_at"] is None
    assert last["status"] == _case
    if outcome == "complete":
        assert (last["external_txid"], isinstance(last["completed_at"], int)) == ("0xabc", True)
    else:
        assert last["reject_reason"] == "address blocked"


def test_a_refused_withdrawal_records_nothing(alice_2fa, usdt, limits, private_ok) -> None:
    from tests.conftest import fund

    endpoint = _endpoint(alice_2fa, ["withdrawal"])
    fund(alice_2fa, usdt, "50")

    with pytest.raises(DomainError):
        request_withdrawal(user=alice_2fa, asset=usdt, amount=Decimal("100"), address=ADDRESS)

    assert _events(endpoint) == []


def test_the_secret_is_returned_once_and_stored_encrypted(alice, private_ok) -> None:
    created = create_webhook_endpoint(
        user=alice, url=" http://127.0.0.1:9/hook ", events=["trade", "deposit", "trade"]
    )

    endpoint = WebhookEndpoint.objects.get()
    assert created.secret.startswith("whsec_")
    assert len(created.secret) > 40
    assert created.secret.encode() not in bytes(endpoint.secret_encrypted)
    assert decrypt_secret(endpoint.secret_encrypted) == created.secret
    assert endpoint.url == "http://127.0.0.1:9/hook"
    assert endpoint.events == ["trade", "deposit"]  # canonical order, no duplicates
    audit = AuditLog.objects.get(action="webhook.created")
    assert created.secret not in str(audit.details)


REFUSED_TARGETS = [
    ("loopback v4", "https://127.0.0.1/hook", "url_forbidden"),
    ("loopback name", "https://localhost:8443/hook", "url_forbidden"),
    ("private 10/8", "https://10.0.0.5/hook", "url_forbidden"),
    ("private 192.168/16", "https://192.168.1.1/hook", "url_forbidden"),
    ("link-local metadata", "https://169.254.169.254/latest", "url_forbidden"),
    ("loopback v6", "https://[::1]/hook", "url_forbidden"),
    ("v4-mapped v6", "https://[::ffff:127.0.0.1]/hook", "url_forbidden"),
    ("unspecified", "https://0.0.0.0/hook", "url_forbidden"),
    ("multicast", "https://224.0.0.1/hook", "url_forbidden"),
    ("shared address space", "https://100.64.0.1/hook", "url_forbidden"),
    ("plain http in production", "http://203.0.113.9/hook", "url_https_required"),
    ("ftp", "ftp://example.com/hook", "url_scheme_invalid"),
    ("javascript", "javascript:alert(1)", "url_scheme_invalid"),
    ("no host", "https:///hook", "url_invalid"),
    ("credentials", "https://user:pw@203.0.113.9/hook", "url_credentials"),
    ("bad port", "https://203.0.113.9:99999/hook", "url_invalid"),
    ("too long", "https://203.0.113.9/" + "a" * 2048, "url_too_long"),
    ("spaces", "https://203.0.113.9/a b", "url_invalid"),
    ("non-ascii host", "https://exämple.com/hook", "url_invalid"),
    ("fragment", "https://203.0.113.9/hook#x", "url_invalid"),
    ("empty", "", "url_required"),
    ("not a string", 42, "url_required"),
]


@pytest.mark.parametrize(("_case", "url", "code"), REFUSED_TARGETS)
def test_registration_refuses_bad_and_private_targets_and_writes_nothing(
    alice, _case, url, code
) -> None:
    with pytest.raises(DomainError) as caught:
        create_webhook_endpoint(user=alice, url=url, events=["trade"])

    assert (caught.value.code, caught.value.field) == (code, "url")
    assert WebhookEndpoint.objects.exists() is False
    assert AuditLog.objects.filter(action__startswith="webhook.").exists() is False


@pytest.mark.parametrize(
    ("_case", "events", "code"),
    [
        ("none", [], "events_required"),
        ("not a list", "trade", "events_required"),
        ("unknown", ["trade", "order"], "event_type_unknown"),
        ("not a string", [1], "event_type_unknown"),
    ],
)
def test_registration_refuses_bad_events_and_writes_nothing(
    alice, private_ok, _case, events, code
) -> None:
    with pytest.raises(DomainError) as caught:
        create_webhook_endpoint(user=alice, url="http://127.0.0.1:9/", events=events)

    assert (caught.value.code, caught.value.field) == (code, "events")
    assert WebhookEndpoint.objects.exists() is False


def test_a_user_has_at_most_ten_endpoints(alice, private_ok) -> None:
    for _ in range(MAX_ENDPOINTS_PER_USER):
        _endpoint(alice, ["trade"])

    with pytest.raises(DomainError) as caught:
        _endpoint(alice, ["trade"])

    assert caught.value.code == "too_many_endpoints"
    assert WebhookEndpoint.objects.count() == MAX_ENDPOINTS_PER_USER


def test_another_users_endpoint_cannot_be_deleted(alice, mallory, private_ok) -> None:
    endpoint = _endpoint(alice, ["trade"])

    with pytest.raises(DomainError) as caught:
        delete_webhook_endpoint(user=mallory, endpoint_id=endpoint.pk)

    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    delete_webhook_endpoint(user=alice, endpoint_id=endpoint.pk)
    assert WebhookEndpoint.objects.exists() is False
