"""Helpers for the web, admin and API-key tests: 2FA set-up, TOTP codes, a real login."""

from __future__ import annotations

import time

import pyotp
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import decrypt
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD

TOTP_PERIOD = 30


def enable_totp(user: User) -> str:
    """Give `user` a TOTP authenticator the way allauth stores one; return its secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    cache.delete(f"totp-failures:{user.pk}")  # user ids repeat across --create-db runs
    return secret


def stored_totp_secret(user: User) -> str:
    """Read the secret back from allauth's storage (`data["secret"]`, via its adapter)."""
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    return decrypt(authenticator.data["secret"])


def totp_code(secret: str) -> str:
    """The current code; waits out the last second of a period so the server, with no
    clock tolerance, sees the same period as the code."""
    remaining = TOTP_PERIOD - time.time() % TOTP_PERIOD
    if remaining < 1.5:
        time.sleep(remaining + 0.05)
    return pyotp.TOTP(secret).now()


def wrong_code(secret: str) -> str:
    right = pyotp.TOTP(secret).now()
    return f"{(int(right) + 1) % 1_000_000:06d}"


def login_with_totp(client: Client, user: User, *, next_url: str | None = None) -> None:
    """Sign in through allauth: password form, then the TOTP stage with a fresh code."""
    url = reverse("account_login")
    if next_url:
        url = f"{url}?next={next_url}"
    response = client.post(url, {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(reverse("mfa_authenticate"))
    code = totp_code(stored_totp_secret(user))
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302, response.content[:500]
    assert "_auth_user_id" in client.session
