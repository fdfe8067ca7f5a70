"""Audit rows for security events that happen inside Django and allauth.

Signals are used here only because the events are raised by code we do not own (Django's
login, allauth's MFA); our own services write their audit rows themselves. Nothing here
records a secret: no password, no TOTP code, no session key.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.http import actor_context, client_ip
from accounts.models import User
from accounts.services.audit import ActorContext, record_audit

MAX_IDENTIFIER_CHARS = 254  # an email address; longer input is an attack, not a typo


@receiver(auth_signals.user_logged_in, dispatch_uid="accounts.audit_login")
def audit_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    record_audit(action="auth.login", actor=user, target=user, context=actor_context(request))


@receiver(auth_signals.user_logged_out, dispatch_uid="accounts.audit_logout")
def audit_logout(
    sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if user is None or not user.pk:
        return
    record_audit(action="auth.logout", actor=user, target=user, context=actor_context(request))


@receiver(auth_signals.user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django already masks the password in `credentials`; we keep only the identifier.
    identifier = str(credentials.get("email") or credentials.get("username") or "")
    identifier = identifier.strip().lower()[:MAX_IDENTIFIER_CHARS]
    target = User.objects.filter(email=identifier).first() if identifier else None
    record_audit(
        action="auth.login_failed",
        target=target,
        details={"login": identifier},
        # No actor, whoever holds the session: a failed sign-in names the account as target.
        context=ActorContext(ip_address=client_ip(request)),
    )


@receiver(mfa_signals.authenticator_added, dispatch_uid="accounts.audit_mfa_added")
def audit_authenticator_added(
    sender: Any,
    request: HttpRequest | None,
    user: User,
    authenticator: Authenticator,
    **kwargs: Any,
) -> None:
    _audit_authenticator("mfa.enabled", request, user, authenticator)


@receiver(mfa_signals.authenticator_removed, dispatch_uid="accounts.audit_mfa_removed")
def audit_authenticator_removed(
    sender: Any,
    request: HttpRequest | None,
    user: User,
    authenticator: Authenticator,
    **kwargs: Any,
) -> None:
    _audit_authenticator("mfa.disabled", request, user, authenticator)


@receiver(mfa_signals.authenticator_reset, dispatch_uid="accounts.audit_mfa_reset")
def audit_authenticator_reset(
    sender: Any,
    request: HttpRequest | None,
    user: User,
    authenticator: Authenticator,
    **kwargs: Any,
) -> None:
    _audit_authenticator("mfa.recovery_codes_regenerated", request, user, authenticator)


@receiver(mfa_signals.authentication_failed, dispatch_uid="accounts.audit_mfa_failed")
def audit_mfa_failed(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    record_audit(
        action="auth.mfa_failed",
        actor=user,
        target=user,
        details={"reauthentication": bool(kwargs.get("reauthentication"))},
        context=actor_context(request),
    )


def _audit_authenticator(
    action: str, request: HttpRequest | None, user: User, authenticator: Authenticator
) -> None:
    record_audit(
        action=action,
        actor=user,
        target=user,
        details={"type": authenticator.type},  # never authenticator.data: it holds the secret
        context=actor_context(request),
    )
