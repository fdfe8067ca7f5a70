"""Test settings: base plus speed and isolation knobs. Same PostgreSQL and Redis."""

from exchange.settings.base import *  # noqa: F403
from exchange.settings.base import CACHES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES["default"]["KEY_PREFIX"] = "exchange-test"
ACCOUNT_RATE_LIMITS = False  # type: ignore[assignment]  # allauth: False disables all
# Tests never collect static files; WhiteNoise finds them in place instead.
STATIC_ROOT = None  # type: ignore[assignment]  # no collected files in tests
WHITENOISE_USE_FINDERS = True
