"""allauth MFA secrets encrypted at rest: the TOTP secret and the recovery-code seed.

allauth stores what it needs to check a code in `mfa_authenticator.data` and passes every
such value through its adapter's `encrypt`/`decrypt` (the TOTP `secret`, the recovery codes'
`seed` and any `migrated_codes`). The default adapter stores them in the clear; this one
encrypts them with settings.MFA_ENCRYPTION_KEY, the same Fernet scheme (and key rotation)
as the API secrets (exchange/encryption.py). A stored value carries the `fernet:` prefix,
which none of allauth's plaintext values (base32, hex, digits) can start with: that is how
the data migration (accounts 0005) tells an encrypted row from one it still has to encrypt.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.adapter import DefaultMFAAdapter
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from exchange.encryption import fernet_for

PREFIX = "fernet:"
# The values of each authenticator type that allauth reads through decrypt().
SECRET_FIELDS = {"totp": ("secret",), "recovery_codes": ("seed",)}
SECRET_LIST_FIELDS = {"recovery_codes": ("migrated_codes",)}


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt_value(text: str) -> str:
    """Encrypt one MFA value with the current (first) key."""
    token = fernet_for(settings.MFA_ENCRYPTION_KEY).encrypt(text.encode("utf-8"))
    return PREFIX + token.decode("ascii")


def decrypt_value(stored: str) -> str:
    """Decrypt one stored MFA value with any of the configured keys.

    A value without the prefix was never encrypted (a row the data migration has not seen)
    and one no key opens was written with a key that is gone: both are configuration
    errors, reported as such rather than treated as a wrong code.
    """
    if not is_encrypted(stored):
        raise ImproperlyConfigured(
            "An MFA secret is stored unencrypted; run `python manage.py migrate accounts`."
        )
    try:
        plain = fernet_for(settings.MFA_ENCRYPTION_KEY).decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "An MFA secret cannot be decrypted with MFA_ENCRYPTION_KEY (a removed key?)."
        ) from exc
    return plain.decode("utf-8")


def _transform(
    kind: str, data: dict[str, Any], *, encrypt: bool
) -> dict[str, Any] | None:  # Any: allauth's JSON data
    """`data` with every secret value of authenticator type `kind` (en|de)crypted, or None
    when nothing needed it (already in the wanted form, or a type without secrets)."""
    changed = False
    result = dict(data)

    def convert(value: str) -> str:
        nonlocal changed
        if is_encrypted(value) == encrypt:
            return value
        changed = True
        return encrypt_value(value) if encrypt else decrypt_value(value)

    for field in SECRET_FIELDS.get(kind, ()):
        if isinstance(result.get(field), str):
            result[field] = convert(result[field])
    for field in SECRET_LIST_FIELDS.get(kind, ()):
        if isinstance(result.get(field), list):
            result[field] = [convert(v) if isinstance(v, str) else v for v in result[field]]
    return result if changed else None


def encrypted_data(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:  # Any: JSON
    """Encrypt what is still plaintext in an authenticator's data; None if nothing was."""
    return _transform(kind, data, encrypt=True)


def decrypted_data(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:  # Any: JSON
    """The reverse of `encrypted_data` (the migration's way back); None if nothing changed."""
    return _transform(kind, data, encrypt=False)


class EncryptingMFAAdapter(DefaultMFAAdapter):
    """allauth's MFA adapter with `encrypt`/`decrypt` backed by MFA_ENCRYPTION_KEY."""

    def encrypt(self, text: str) -> str:
        return encrypt_value(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt_value(encrypted_text)
