"""API keys: create, list, revoke; encryption of HMAC secrets.

Two key types, both Binance-compatible:

- HMAC: the server generates the key id and the secret. HMAC needs the plaintext secret
  to verify, so it cannot be hashed like a password: it is stored encrypted with Fernet
  (settings.API_KEY_ENCRYPTION_KEY, rotatable: exchange/encryption.py) and shown to the user
  exactly once, as the return value of `create_api_key`.
- Ed25519: the user generates the key pair and pastes the PEM public key; the server keeps
  only that, so a database leak reveals nothing that can sign.

Request-signature verification lives in accounts/signing.py.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import AccountFrozen, InvalidInput, NotFound, PermissionDeniedError
from accounts.models import ApiKey, ApiKeyType, User
from accounts.services.audit import ActorContext, record_audit
from accounts.services.twofactor import verify_totp_code
from exchange.encryption import fernet_for

logger = logging.getLogger(__name__)

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 64  # Binance keys and secrets are 64 alphanumerics; ccxt expects nothing else
MAX_LABEL_CHARS = 64
MAX_ALLOWLIST_ENTRIES = 20
MAX_ACTIVE_KEYS_PER_USER = 20  # bounds the blast radius of a hijacked session
MAX_PUBLIC_KEY_CHARS = 1000  # an Ed25519 PEM is ~113 characters
SCOPES = ("read", "trade", "withdraw")


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key and, for HMAC keys only, its secret: the one time it is ever readable."""

    api_key: ApiKey
    secret: str | None


def create_api_key(
    *,
    user: User,
    label: str,
    key_type: str = ApiKeyType.HMAC,
    can_read: bool = True,
    can_trade: bool = False,
    can_withdraw: bool = False,
    ip_allowlist: Sequence[str] = (),
    expires_at: datetime | None = None,
    public_key_pem: str = "",
    totp_code: str = "",
    context: ActorContext | None = None,
) -> CreatedApiKey:
    """Create an API key for `user` and notify them by email after commit.

    The withdraw scope is off unless asked for, and then needs a TOTP authenticator and a
    valid code (step-up). Frozen users cannot create keys. Raises a DomainError with a
    field on any bad input; on any error nothing is written. Audited as api_key.created
    (without secrets) with `context`'s IP address, which the email names too.
    """
    if user.is_frozen:
        raise AccountFrozen(_("Your account is frozen; API keys cannot be created."))
    clean_label = _check_label(label)
    if key_type not in ApiKeyType.values:
        raise InvalidInput(_("Unknown key type."), field="key_type", code="key_type_invalid")
    if not (can_read or can_trade or can_withdraw):
        raise InvalidInput(
            _("Choose at least one permission."), field="scopes", code="scope_required"
        )
    networks = parse_ip_allowlist(ip_allowlist)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(
            _("The expiry must be in the future."), field="expires_at", code="expiry_in_past"
        )
    public_key = _check_public_key(public_key_pem) if key_type == ApiKeyType.ED25519 else ""
    if user.api_keys.filter(revoked_at__isnull=True).count() >= MAX_ACTIVE_KEYS_PER_USER:
        raise InvalidInput(
            _("You have too many active keys; revoke one first."), code="too_many_keys"
        )
    if can_withdraw:
        # Last: a wrong code must not be spent on a request that fails for another reason.
        verify_totp_code(user=user, code=totp_code, field="totp_code", context=context)

    secret = _random_token() if key_type == ApiKeyType.HMAC else None
    ip_address = context.ip_address if context is not None else None
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user,
            label=clean_label,
            key=_random_token(),
            key_type=key_type,
            secret_encrypted=encrypt_secret(secret) if secret is not None else None,
            public_key=public_key,
            can_read=can_read,
            can_trade=can_trade,
            can_withdraw=can_withdraw,
            ip_allowlist=networks,
            expires_at=expires_at,
        )
        record_audit(
            action="api_key.created",
            actor=user,
            target=api_key,
            details=_describe(api_key),
            context=context,
        )
        transaction.on_commit(lambda: _notify_created(api_key=api_key, ip_address=ip_address))
    return CreatedApiKey(api_key=api_key, secret=secret)


def revoke_api_key(*, user: User, api_key_id: int, context: ActorContext | None = None) -> ApiKey:
    """Revoke one of the user's own keys; the next signed request with it fails.

    Another user's key id looks exactly like a missing one (NotFound). Idempotent: revoking
    a revoked key changes nothing and writes no second audit row.
    """
    api_key = ApiKey.objects.filter(user=user, pk=api_key_id).first()
    if api_key is None:
        raise NotFound(_("No such API key."), field="api_key")
    return _apply_revoke(api_key=api_key, actor=user, context=context)


def staff_revoke_api_key(
    *, staff: User, api_key_id: int, context: ActorContext | None = None
) -> ApiKey:
    """Revoke any user's key on behalf of staff (compromise response). Audited with the staff
    member as the actor."""
    if not staff.is_staff:
        raise PermissionDeniedError(_("Only staff can revoke other users' keys."))
    api_key = ApiKey.objects.filter(pk=api_key_id).first()
    if api_key is None:
        raise NotFound(_("No such API key."), field="api_key")
    return _apply_revoke(api_key=api_key, actor=staff, context=context)


def list_api_keys(*, user: User) -> QuerySet[ApiKey]:
    """The user's keys, newest first, active and revoked. Never carries the secret out:
    templates and serializers must not render `secret_encrypted`."""
    return ApiKey.objects.filter(user=user).defer("secret_encrypted").order_by("-pk")


def parse_ip_allowlist(entries: Sequence[str]) -> list[str]:
    """Validate IPs and CIDR networks; return them normalised ("10.0.0.0/8", "::1/128").

    Pure. An empty list means "any address". Host bits in a CIDR are an error rather than
    silently widened, so "10.1.2.3/8" does not surprise its author.
    """
    cleaned = [entry.strip() for entry in entries if entry.strip()]
    if len(cleaned) > MAX_ALLOWLIST_ENTRIES:
        raise InvalidInput(
            _("At most %(count)d addresses are allowed.") % {"count": MAX_ALLOWLIST_ENTRIES},
            field="ip_allowlist",
            code="ip_allowlist_too_long",
        )
    networks: list[str] = []
    for entry in cleaned:
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise InvalidInput(
                _("“%(entry)s” is not an IP address or CIDR network.") % {"entry": entry[:64]},
                field="ip_allowlist",
                code="ip_allowlist_invalid",
            ) from exc
        if str(network) not in networks:
            networks.append(str(network))
    return networks


def encrypt_secret(secret: str) -> bytes:
    """Encrypt an HMAC secret for storage (Fernet: AES-128-CBC + HMAC-SHA256, timestamped)."""
    return fernet_for(settings.API_KEY_ENCRYPTION_KEY).encrypt(secret.encode("ascii"))


def decrypt_secret(token: bytes | memoryview) -> str:
    """Decrypt a stored HMAC secret (any configured key). Only signature verification calls
    this; a token no key opens raises cryptography's InvalidToken."""
    return fernet_for(settings.API_KEY_ENCRYPTION_KEY).decrypt(bytes(token)).decode("ascii")


def _apply_revoke(*, api_key: ApiKey, actor: User, context: ActorContext | None) -> ApiKey:
    now = timezone.now()
    with transaction.atomic():
        # Conditional UPDATE: of two concurrent revocations exactly one writes the audit row.
        claimed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if claimed:
            record_audit(
                action="api_key.revoked",
                actor=actor,
                target=api_key,
                details={"key_prefix": api_key.key[:8], "owner_id": api_key.user_id},
                context=context,
            )
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def _check_label(label: str) -> str:
    clean = (label or "").strip()
    if not clean:
        raise InvalidInput(_("Give the key a label."), field="label", code="label_required")
    if len(clean) > MAX_LABEL_CHARS or not clean.isprintable():
        raise InvalidInput(
            _("The label must be at most %(count)d printable characters.")
            % {"count": MAX_LABEL_CHARS},
            field="label",
            code="label_invalid",
        )
    return clean


def _check_public_key(pem: str) -> str:
    text = (pem or "").strip()
    error = InvalidInput(
        _("Paste an Ed25519 public key in PEM format (-----BEGIN PUBLIC KEY-----)."),
        field="public_key",
        code="public_key_invalid",
    )
    if not text or len(text) > MAX_PUBLIC_KEY_CHARS or "PRIVATE KEY" in text:
        raise error
    try:
        loaded = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise error from exc
    if not isinstance(loaded, Ed25519PublicKey):
        raise error
    # Store our own canonical encoding, not the pasted text (stray whitespace, comments).
    return loaded.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _random_token() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _position in range(KEY_LENGTH))


def _describe(api_key: ApiKey) -> dict[str, object]:
    """What the audit row and the email may say about a key: no secret, only a key prefix."""
    return {
        "label": api_key.label,
        "key_prefix": api_key.key[:8],
        "key_type": api_key.key_type,
        "scopes": [scope for scope in SCOPES if getattr(api_key, f"can_{scope}")],
        "ip_allowlist": list(api_key.ip_allowlist),
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
    }


def _notify_created(*, api_key: ApiKey, ip_address: str | None) -> None:
    """Tell the owner a key was created (ASVS 2.2.3): a hijacked session cannot hide it."""
    context = {"api_key": api_key, "details": _describe(api_key), "ip_address": ip_address}
    try:
        send_mail(
            subject=render_to_string("accounts/email/api_key_created_subject.txt", context).strip(),
            message=render_to_string("accounts/email/api_key_created_message.txt", context),
            from_email=None,
            recipient_list=[api_key.user.email],
        )
    except Exception:  # the key exists already; a mail outage must not turn it into a 500
        logger.exception("api key created notification failed", extra={"key_id": api_key.pk})
