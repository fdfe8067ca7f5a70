"""Security events reach the audit log with the client's IP, and never with a secret."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, User
from accounts.services.apikeys import create_api_key
from accounts.services.audit import ActorContext
from tests.accounts.web_support import enable_totp, login_with_totp, totp_code, wrong_code
from tests.conftest import PASSWORD


def actions() -> list[str]:
    return list(AuditLog.objects.order_by("pk").values_list("action", flat=True))


@pytest.mark.django_db
def test_login_and_logout_are_audited_with_ip(client: Client, alice: User) -> None:
    client.post(
        reverse("account_login"),
        {"login": alice.email, "password": PASSWORD},
        REMOTE_ADDR="198.51.100.23",
    )
    client.post(reverse("account_logout"), REMOTE_ADDR="198.51.100.23")

    rows = list(AuditLog.objects.order_by("pk"))
    assert [(r.action, r.actor, r.ip_address) for r in rows] == [
        ("auth.login", alice, "198.51.100.23"),
        ("auth.logout", alice, "198.51.100.23"),
    ]


@pytest.mark.django_db
def test_failed_login_is_audited_without_the_password(client: Client, alice: User) -> None:
    client.post(reverse("account_login"), {"login": alice.email, "password": "Wrong-Password-9"})

    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_id, row.ip_address) == (
        "auth.login_failed",
        None,
        str(alice.pk),
        "127.0.0.1",
    )
    assert row.details == {"login": "alice@example.com"}
    assert "Wrong-Password-9" not in repr(row.details)


@pytest.mark.django_db
def test_failed_login_of_unknown_email_has_no_target(client: Client) -> None:
    client.post(reverse("account_login"), {"login": "nobody@example.com", "password": "x" * 12})

    row = AuditLog.objects.get()
    assert (row.action, row.target_id, row.details) == (
        "auth.login_failed",
        "",
        {"login": "nobody@example.com"},
    )


@pytest.mark.django_db
def test_wrong_second_factor_is_audited(client: Client, alice: User) -> None:
    secret = enable_totp(alice)
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})

    client.post(reverse("mfa_authenticate"), {"code": wrong_code(secret)})

    assert actions() == ["auth.mfa_failed"]


@pytest.mark.django_db
def test_enabling_and_disabling_totp_through_allauth_is_audited(
    client: Client, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})
    # allauth asks for the password again before 2FA changes.
    response = client.get(reverse("mfa_activate_totp"))
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]

    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after commit
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    assert response.status_code == 302
    assert Authenticator.objects.filter(user=alice, type="totp").exists()
    enabled = AuditLog.objects.filter(action="mfa.enabled").order_by("pk")
    assert [(r.actor, r.details, r.ip_address) for r in enabled] == [
        (alice, {"type": "totp"}, "127.0.0.1"),
        (alice, {"type": "recovery_codes"}, "127.0.0.1"),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_deactivate_totp"))

    assert not Authenticator.objects.filter(user=alice, type="totp").exists()
    disabled = AuditLog.objects.filter(action="mfa.disabled").values_list("details", flat=True)
    assert {d["type"] for d in disabled} == {"totp", "recovery_codes"}
    assert secret not in repr(list(AuditLog.objects.values()))


@pytest.mark.django_db
def test_security_page_lists_the_users_events(client: Client, alice: User, bob: User) -> None:
    enable_totp(alice)
    login_with_totp(client, alice)
    create_api_key(user=alice, label="bot", context=ActorContext(alice, "203.0.113.9"))
    Client().post(reverse("account_login"), {"login": alice.email, "password": "nope-nope-1"})
    Client().post(reverse("account_login"), {"login": bob.email, "password": PASSWORD})

    body = client.get(reverse("security")).content.decode()

    assert "Signed in" in body
    assert "API key created" in body
    assert "Failed sign-in" in body
    assert "203.0.113.9" in body
    assert body.count("Signed in") == 1  # bob's sign-in is not alice's business


@pytest.mark.django_db
def test_no_secret_reaches_the_audit_log(client: Client, alice: User) -> None:
    totp_secret = enable_totp(alice)
    login_with_totp(client, alice)
    created = create_api_key(user=alice, label="bot")
    client.post(reverse("api_key_revoke", args=[created.api_key.pk]))

    dump = repr(list(AuditLog.objects.values()))

    assert actions() == ["auth.login", "api_key.created", "api_key.revoked"]
    for secret in (totp_secret, created.secret, created.api_key.key, PASSWORD):
        assert secret not in dump  # type: ignore[operator]
    assert pyotp.TOTP(totp_secret).now() not in dump
