"""Second-factor checks for sensitive actions (withdrawals, withdraw-scoped API keys).

The TOTP authenticator itself is allauth's (allauth.mfa): set-up, login stage, recovery
codes. This module only answers "does this user have one" and "is this code right now",
reusing allauth's validation so a code accepted here is also marked used there: the same
code cannot be replayed within its period, whether at login or at a withdrawal.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.utils.translation import gettext as _

from accounts.errors import TwoFactorRequired
from accounts.models import User
from accounts.services.audit import ActorContext, record_audit
from exchange.errors import DomainError

# Six digits give 10^6 codes and allauth accepts the neighbouring periods as well; five
# wrong guesses per quarter hour keeps an attacker holding a session far from any luck.
MAX_FAILED_CODES = 5
FAILED_CODES_WINDOW_SECONDS = 15 * 60
MAX_CODE_CHARS = 16


class TotpCodeInvalid(DomainError):
    """The authenticator code is wrong, expired or was already used."""

    code = "totp_invalid"


class TotpRateLimited(DomainError):
    """Too many wrong authenticator codes in a short time."""

    code = "totp_rate_limited"
    status = 429


def has_totp(*, user: User) -> bool:
    """True when the user has an active TOTP authenticator."""
    return bool(Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists())


def verify_totp_code(
    *, user: User, code: str, field: str = "totp_code", context: ActorContext | None = None
) -> None:
    """Check a TOTP code of `user` for a sensitive action; return only if it is right.

    Raises TwoFactorRequired when the user has no authenticator, TotpRateLimited after
    MAX_FAILED_CODES wrong codes within the window, TotpCodeInvalid otherwise. A right code
    is marked used (allauth's cache), so it cannot be replayed within its period. A wrong
    code is audited as `auth.totp_failed` (without the code), from `context`'s IP address.
    """
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        raise TwoFactorRequired(_("Set up two-factor authentication first."), field=field)
    failures_key = f"totp-failures:{user.pk}"
    if (cache.get(failures_key) or 0) >= MAX_FAILED_CODES:
        raise TotpRateLimited(
            _("Too many wrong codes. Wait a few minutes and try again."), field=field
        )
    cleaned = (code or "").strip().replace(" ", "")
    if (
        not cleaned
        or len(cleaned) > MAX_CODE_CHARS
        or not authenticator.wrap().validate_code(cleaned)
    ):
        # add() then incr(): the counter starts its window on the first failure only.
        cache.add(failures_key, 0, timeout=FAILED_CODES_WINDOW_SECONDS)
        cache.incr(failures_key)
        record_audit(
            action="auth.totp_failed",
            actor=user,
            target=user,
            details={"purpose": field},
            context=context,
        )
        raise TotpCodeInvalid(_("The authenticator code is not valid."), field=field)
    authenticator.record_usage()
