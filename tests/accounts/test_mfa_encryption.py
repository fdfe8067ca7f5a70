"""allauth's MFA secrets are stored encrypted; codes still verify; old rows are migrated.

The adapter (accounts/mfa_adapter.py) encrypts the TOTP secret and the recovery-code seed
with MFA_ENCRYPTION_KEY; data migration accounts 0005 encrypts rows written before it,
idempotently, and decrypts them on the way back. A malformed key stops start-up.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from cryptography.fernet import Fernet
from django.apps import apps as django_apps
from django.core.exceptions import ImproperlyConfigured

from accounts.errors import DomainError
from accounts.mfa_adapter import EncryptingMFAAdapter, decrypt_value, encrypt_value
from accounts.models import User
from accounts.services.twofactor import verify_totp_code
from exchange.encryption import parse_fernet_keys
from exchange.env import EnvError
from tests.accounts.web_support import enable_totp, totp_code, wrong_code

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = importlib.import_module("accounts.migrations.0005_encrypt_mfa_secrets")
PLAIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PLAIN_SEED = "ab" * 40
MIGRATED_CODES = ["12345678", "87654321"]


def _data(user: User, kind: str) -> dict[str, object]:
    return dict(Authenticator.objects.get(user=user, type=kind).data)


def _plaintext_rows(user: User) -> None:
    """Rows as allauth's default adapter wrote them before this change."""
    Authenticator.objects.create(user=user, type="totp", data={"secret": PLAIN_SECRET})
    Authenticator.objects.create(
        user=user,
        type="recovery_codes",
        data={"seed": PLAIN_SEED, "used_mask": 0, "migrated_codes": MIGRATED_CODES},
    )


@pytest.mark.django_db
def test_new_totp_secret_is_stored_encrypted_and_codes_verify(alice):
    secret = enable_totp(alice)

    stored = _data(alice, "totp")["secret"]
    assert isinstance(stored, str)
    assert stored.startswith("fernet:")
    assert secret not in stored
    assert EncryptingMFAAdapter().decrypt(stored) == secret
    verify_totp_code(user=alice, code=totp_code(secret))  # returns only when right
    with pytest.raises(DomainError) as caught:
        verify_totp_code(user=alice, code=wrong_code(secret))
    assert caught.value.code == "totp_invalid"


@pytest.mark.django_db
def test_recovery_seed_is_stored_encrypted_and_codes_verify(alice):
    codes = RecoveryCodes.activate(alice)
    plain = codes.generate_codes()

    seed = _data(alice, "recovery_codes")["seed"]
    assert isinstance(seed, str)
    assert seed.startswith("fernet:")
    assert codes.validate_code(plain[0]) is True
    assert plain[0] not in RecoveryCodes(codes.instance).get_unused_codes()


@pytest.mark.django_db
def test_migration_encrypts_plaintext_rows_and_a_second_run_changes_nothing(alice, bob):
    _plaintext_rows(alice)
    bob_secret = enable_totp(bob)  # written encrypted already: left alone
    bob_before = _data(bob, "totp")

    changed = MIGRATION.encrypt_mfa_secrets(django_apps, None)

    assert changed == 2
    totp, recovery = _data(alice, "totp"), _data(alice, "recovery_codes")
    assert PLAIN_SECRET not in repr(totp)
    assert PLAIN_SEED not in repr(recovery)
    assert all(code not in repr(recovery) for code in MIGRATED_CODES)
    assert decrypt_value(str(totp["secret"])) == PLAIN_SECRET
    assert decrypt_value(str(recovery["seed"])) == PLAIN_SEED
    assert recovery["used_mask"] == 0
    assert [decrypt_value(v) for v in recovery["migrated_codes"]] == MIGRATED_CODES  # type: ignore[attr-defined]
    assert _data(bob, "totp") == bob_before
    verify_totp_code(user=alice, code=totp_code(PLAIN_SECRET))
    verify_totp_code(user=bob, code=totp_code(bob_secret))

    snapshot = [(a.pk, a.data) for a in Authenticator.objects.order_by("pk")]
    assert MIGRATION.encrypt_mfa_secrets(django_apps, None) == 0
    assert [(a.pk, a.data) for a in Authenticator.objects.order_by("pk")] == snapshot


@pytest.mark.django_db
def test_migration_reverse_restores_plaintext(alice):
    _plaintext_rows(alice)
    MIGRATION.encrypt_mfa_secrets(django_apps, None)

    assert MIGRATION.decrypt_mfa_secrets(django_apps, None) == 2

    assert _data(alice, "totp") == {"secret": PLAIN_SECRET}
    assert _data(alice, "recovery_codes") == {
        "seed": PLAIN_SEED,
        "used_mask": 0,
        "migrated_codes": MIGRATED_CODES,
    }
    assert MIGRATION.decrypt_mfa_secrets(django_apps, None) == 0


def test_rotation_old_values_decrypt_new_ones_use_the_first_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEY = old
    written_before = encrypt_value(PLAIN_SECRET)

    settings.MFA_ENCRYPTION_KEY = f"{new},{old}"
    written_after = encrypt_value(PLAIN_SECRET)

    assert decrypt_value(written_before) == PLAIN_SECRET
    settings.MFA_ENCRYPTION_KEY = new
    assert decrypt_value(written_after) == PLAIN_SECRET
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        decrypt_value(written_before)


def test_unencrypted_value_is_a_configuration_error_not_a_wrong_code():
    with pytest.raises(ImproperlyConfigured, match="migrate accounts"):
        decrypt_value(PLAIN_SECRET)


@pytest.mark.parametrize(
    ("_case", "raw", "message"),
    [
        ("empty", " , ", "must hold at least one Fernet key"),
        ("not base64", "not-a-key", "key 1 of 1 is not a Fernet key"),
        ("16 bytes", "MDEyMzQ1Njc4OWFiY2RlZg==", "key 1 of 1 is not a Fernet key"),
        ("second of two", f"{Fernet.generate_key().decode()},oops", "key 2 of 2"),
    ],
)
def test_malformed_keys_are_refused_with_the_setting_name(_case, raw, message):
    with pytest.raises(EnvError, match=message) as caught:
        parse_fernet_keys("MFA_ENCRYPTION_KEY", raw)
    assert "MFA_ENCRYPTION_KEY" in str(caught.value)


@pytest.mark.parametrize(
    ("_case", "env", "message"),
    [
        (
            "invalid MFA key",
            {"MFA_ENCRYPTION_KEY": "not-a-key"},
            "MFA_ENCRYPTION_KEY: key 1 of 1 is not a Fernet key",
        ),
        (
            "invalid API key",
            {"API_KEY_ENCRYPTION_KEY": "short"},
            "API_KEY_ENCRYPTION_KEY: key 1 of 1 is not a Fernet key",
        ),
        (
            "missing key in production",
            {"DEBUG": "false", "SECRET_KEY": "s" * 50, "API_KEY_ENCRYPTION_KEY": ""},
            "API_KEY_ENCRYPTION_KEY must be set when DEBUG is off",
        ),
    ],
)
def test_bad_key_stops_start_up_with_a_clear_error(_case, env, message):
    inherited = {k: v for k, v in os.environ.items() if not k.endswith("_ENCRYPTION_KEY")}
    environment = {**inherited, "DJANGO_SETTINGS_MODULE": "exchange.settings.base", **env}

    run = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode != 0
    assert message in run.stderr, run.stderr[-3000:]
