"""The webhook signature: ``X-Exchange-Signature: v1=<hex HMAC-SHA256(secret, f"{ts}.{body}")>``.

`ts` is the ``X-Exchange-Timestamp`` header (milliseconds since the epoch) and `body` the
exact bytes of the request body. The receiver recomputes it (README "Webhooks" has the code)
and rejects old timestamps, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

from exchange.encryption import fernet_for

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret (256 random bits, url-safe text)."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value for one request."""
    message = timestamp.encode("ascii") + b"." + body
    return "v1=" + hmac.new(secret.encode("ascii"), message, hashlib.sha256).hexdigest()


def encrypt_secret(secret: str) -> bytes:
    """Encrypt a signing secret for storage (the API keys' Fernet keys, rotatable)."""
    return fernet_for(settings.API_KEY_ENCRYPTION_KEY).encrypt(secret.encode("ascii"))


def decrypt_secret(token: bytes | memoryview) -> str:
    """Decrypt a stored signing secret; only delivery calls this."""
    return fernet_for(settings.API_KEY_ENCRYPTION_KEY).decrypt(bytes(token)).decode("ascii")
