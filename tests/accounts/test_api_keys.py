"""API keys through the pages and the service: secret shown once and stored encrypted,
scopes with step-up for withdraw, IP allowlist, Ed25519, frozen users, revocation, IDOR."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.errors import AccountFrozen, InvalidInput, TwoFactorRequired
from accounts.models import ApiKey, AuditLog, User
from accounts.services.apikeys import (
    create_api_key,
    decrypt_secret,
    encrypt_secret,
    list_api_keys,
    parse_ip_allowlist,
    revoke_api_key,
)
from accounts.services.audit import ActorContext
from tests.accounts.web_support import enable_totp, totp_code, wrong_code

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def create_via_page(client: Client, **fields: object) -> TestResponse:
    data: dict[str, object] = {"key-label": "bot", "key-key_type": "hmac", "key-can_read": "on"}
    data.update({f"key-{name}": value for name, value in fields.items()})
    return client.post(reverse("api_keys"), data)


def public_pem(private_key: object) -> str:
    return (
        private_key.public_key()  # type: ignore[attr-defined]
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.django_db(transaction=True)  # on_commit: the notification mail
def test_hmac_secret_is_shown_once_and_stored_encrypted(alice: User) -> None:
    client = Client()
    client.force_login(alice)

    response = create_via_page(client, can_trade="on")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(user=alice)
    body = response.content.decode()
    secret = decrypt_secret(key.secret_encrypted)  # type: ignore[arg-type]
    assert len(secret) == 64
    assert secret in body
    assert key.key in body
    assert (key.can_read, key.can_trade, key.can_withdraw) == (True, True, False)
    # Not in the database in plain form, anywhere in the row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey WHERE id = %s", [key.pk])
        row = cursor.fetchone()
    assert secret not in repr(row)
    assert secret.encode() not in bytes(key.secret_encrypted)  # type: ignore[arg-type]
    # Never again: the list page, the audit row and the mail do not carry it.
    assert secret not in client.get(reverse("api_keys")).content.decode()
    assert secret not in repr(list(AuditLog.objects.values()))
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "bot" in mail.outbox[0].subject
    assert secret not in mail.outbox[0].body
    assert key.key not in mail.outbox[0].body
    assert key.key[:8] in mail.outbox[0].body


@pytest.mark.django_db
def test_created_key_is_audited_without_secrets(alice: User) -> None:
    created = create_api_key(user=alice, label="bot", context=ActorContext(alice, "198.51.100.4"))

    row = AuditLog.objects.get(action="api_key.created")
    assert (row.actor, row.target_id, row.ip_address) == (
        alice,
        str(created.api_key.pk),
        "198.51.100.4",
    )
    assert row.details == {
        "label": "bot",
        "key_prefix": created.api_key.key[:8],
        "key_type": "hmac",
        "scopes": ["read"],
        "ip_allowlist": [],
        "expires_at": None,
    }


@pytest.mark.django_db
def test_withdraw_scope_without_2fa_is_refused(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = create_via_page(client, can_withdraw="on", totp_code="123456")

    assert response.status_code == 400
    assert "Set up two-factor authentication first." in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not AuditLog.objects.filter(action="api_key.created").exists()


@pytest.mark.django_db
def test_withdraw_scope_with_wrong_code_is_refused(client: Client, alice: User) -> None:
    secret = enable_totp(alice)
    client.force_login(alice)

    response = create_via_page(client, can_withdraw="on", totp_code=wrong_code(secret))

    assert response.status_code == 400
    assert "The authenticator code is not valid." in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_withdraw_scope_with_valid_code_is_granted(client: Client, alice: User) -> None:
    secret = enable_totp(alice)
    client.force_login(alice)

    response = create_via_page(client, can_withdraw="on", totp_code=totp_code(secret))

    assert response.status_code == 200
    assert ApiKey.objects.get(user=alice).can_withdraw is True


def test_withdraw_scope_is_off_by_default() -> None:
    from accounts.forms import ApiKeyCreateForm

    form = ApiKeyCreateForm()

    assert form.fields["can_withdraw"].initial is None
    assert form.fields["can_read"].initial is True


@pytest.mark.django_db
def test_ip_allowlist_is_validated_on_the_page(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = create_via_page(client, ip_allowlist="10.0.0.0/8\nnot-an-ip")

    assert response.status_code == 400
    assert "is not an IP address or CIDR network" in response.content.decode()
    assert not ApiKey.objects.exists()

    create_via_page(client, ip_allowlist="203.0.113.7, 10.0.0.0/8\n2001:db8::/32")
    assert ApiKey.objects.get().ip_allowlist == ["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("_case", "entries"),
    [
        ("garbage", ["nope"]),
        ("host bits set", ["10.1.2.3/8"]),
        ("prefix too long", ["10.0.0.0/33"]),
        ("too many", [f"10.0.0.{i}" for i in range(21)]),
    ],
)
def test_bad_ip_allowlist_is_refused(_case: str, entries: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ip_allowlist(entries)
    assert caught.value.field == "ip_allowlist"


@pytest.mark.django_db
def test_expiry_is_stored(client: Client, alice: User) -> None:
    client.force_login(alice)

    create_via_page(client, expires_in_days="30")

    expires_at = ApiKey.objects.get().expires_at
    assert expires_at is not None
    assert abs(expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "kwargs", "code"),
    [
        ("no label", {"label": "  "}, "label_required"),
        ("no scope", {"can_read": False}, "scope_required"),
        (
            "expiry in the past",
            {"expires_at": timezone.now() - timedelta(days=1)},
            "expiry_in_past",
        ),
        ("unknown type", {"key_type": "rsa"}, "key_type_invalid"),
        ("ed25519 without key", {"key_type": "ed25519"}, "public_key_invalid"),
    ],
)
def test_bad_input_creates_nothing(
    alice: User, _case: str, kwargs: dict[str, object], code: str
) -> None:
    arguments: dict[str, object] = {"user": alice, "label": "bot"}
    arguments.update(kwargs)

    with pytest.raises(InvalidInput) as caught:
        create_api_key(**arguments)  # type: ignore[arg-type]

    assert caught.value.code == code
    assert not ApiKey.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_ed25519_key_keeps_only_the_public_key(client: Client, alice: User) -> None:
    client.force_login(alice)
    pem = public_pem(Ed25519PrivateKey.generate())

    response = create_via_page(client, key_type="ed25519", public_key=pem)

    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert (key.key_type, key.public_key, key.secret_encrypted) == ("ed25519", pem, None)
    assert "Secret key" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "pem"),
    [
        ("rsa public key", public_pem(generate_private_key(public_exponent=65537, key_size=2048))),
        ("garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
        (
            "a private key",
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode(),
        ),
    ],
)
def test_ed25519_key_must_be_an_ed25519_public_key(
    client: Client, alice: User, _case: str, pem: str
) -> None:
    client.force_login(alice)

    response = create_via_page(client, key_type="ed25519", public_key=pem)

    assert response.status_code == 400
    assert "Paste an Ed25519 public key" in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_frozen_user_cannot_create_keys(client: Client, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_frozen=True)
    alice.refresh_from_db()
    client.force_login(alice)

    response = create_via_page(client)

    assert response.status_code == 400
    assert "Your account is frozen" in response.content.decode()
    assert not ApiKey.objects.exists()
    with pytest.raises(AccountFrozen):
        create_api_key(user=alice, label="bot")


@pytest.mark.django_db
def test_two_factor_error_is_the_shared_code(alice: User) -> None:
    with pytest.raises(TwoFactorRequired) as caught:
        create_api_key(user=alice, label="bot", can_withdraw=True, totp_code="000000")
    assert caught.value.code == "two_factor_required"


@pytest.mark.django_db
def test_revoke_through_the_page(client: Client, alice: User) -> None:
    key = create_api_key(user=alice, label="bot").api_key
    client.force_login(alice)

    response = client.post(reverse("api_key_revoke", args=[key.pk]))

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditLog.objects.filter(action="api_key.revoked", target_id=str(key.pk)).count() == 1
    page = client.get(reverse("api_keys")).content.decode()
    assert "Revoked" in page


@pytest.mark.django_db
def test_revoking_twice_writes_one_audit_row(alice: User) -> None:
    key = create_api_key(user=alice, label="bot").api_key

    first = revoke_api_key(user=alice, api_key_id=key.pk)
    second = revoke_api_key(user=alice, api_key_id=key.pk)

    assert first.revoked_at == second.revoked_at
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


@pytest.mark.django_db
def test_mallory_cannot_revoke_alices_key(client: Client, alice: User, mallory: User) -> None:
    key = create_api_key(user=alice, label="alice-bot").api_key
    client.force_login(mallory)

    response = client.post(reverse("api_key_revoke", args=[key.pk]))

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditLog.objects.filter(action="api_key.revoked").exists()
    assert "alice-bot" not in client.get(reverse("api_keys")).content.decode()


@pytest.mark.django_db
def test_revoke_needs_post(client: Client, alice: User) -> None:
    key = create_api_key(user=alice, label="bot").api_key
    client.force_login(alice)

    assert client.get(reverse("api_key_revoke", args=[key.pk])).status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.django_db
def test_anonymous_cannot_create_keys(client: Client) -> None:
    response = create_via_page(client)

    assert response.status_code == 302
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_list_holds_only_the_users_keys(alice: User, mallory: User) -> None:
    create_api_key(user=alice, label="a")
    create_api_key(user=mallory, label="m")

    assert [key.label for key in list_api_keys(user=alice)] == ["a"]


def test_secret_survives_a_key_rotation(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.API_KEY_ENCRYPTION_KEY = old
    stored = encrypt_secret("S" * 64)

    settings.API_KEY_ENCRYPTION_KEY = f"{new},{old}"  # the new key first, the old one still read

    assert decrypt_secret(stored) == "S" * 64
    assert Fernet(new.encode()).decrypt(encrypt_secret("T" * 64)) == b"T" * 64
