"""The whole configuration of the exchange.

Production differs from a developer's machine only through environment variables
(DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, ...). Defaults are safe for
local use: DEBUG on, local PostgreSQL and Redis. With DEBUG off every security switch
that `manage.py check --deploy` looks at is on.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from exchange.encryption import parse_fernet_keys
from exchange.env import EnvError, env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_secret(
    "SECRET_KEY", dev_default="dev-only-secret-key-change-me-in-production-0123456789abcdef"
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "exchange.apps.ExchangeAdminConfig",  # django.contrib.admin, our AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "markets",
    "trading",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside everything that reads the database: an outage is a 503, never a 500.
    "exchange.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "exchange.urls"
ASGI_APPLICATION = "exchange.asgi.application"
WSGI_APPLICATION = "exchange.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "exchange.context_processors.display",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/exchange"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads per web (uvicorn) process that run Django's synchronous request handling; each
# keeps one database connection (exchange/asgi.py). Processes x threads must stay well
# under PostgreSQL's max_connections beside the Celery workers' connections.
WEB_THREADS = env_int("WEB_THREADS", 16)

# Websocket streams (exchange.ws): each socket's send queue (full: closed with 4008), the
# streams one socket may hold, inbound messages a second (beyond: closed with 1008), a
# socket's longest life, and how often a user stream re-checks its listenKey.
WS_QUEUE_FRAMES = env_int("WS_QUEUE_FRAMES", 2000)
WS_MAX_STREAMS = env_int("WS_MAX_STREAMS", 1024)
WS_INBOUND_MESSAGES_PER_SECOND = env_int("WS_INBOUND_MESSAGES_PER_SECOND", 5)
WS_MAX_CONNECTION_SECONDS = env_int("WS_MAX_CONNECTION_SECONDS", 86400)
LISTEN_KEY_CHECK_SECONDS = env_int("LISTEN_KEY_CHECK_SECONDS", 30)
for _name in (
    "WS_QUEUE_FRAMES",
    "WS_MAX_STREAMS",
    "WS_INBOUND_MESSAGES_PER_SECOND",
    "WS_MAX_CONNECTION_SECONDS",
    "LISTEN_KEY_CHECK_SECONDS",
):
    if globals()[_name] < 1:
        raise EnvError(f"{_name} must be at least 1, got {globals()[_name]}")

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "exchange"),
    }
}

# A websocket consumer waits for its next message with a blocking Redis pop in a loop; the
# Redis read must be allowed to outlast that wait, or every idle websocket dies with a socket
# TimeoutError (redis-py's default socket timeout, 5 s, equals channels-redis' default wait).
# The wait is half the socket timeout (exchange.channel_layer checks the pair); the timeout
# also bounds how long a send to a dead Redis can hang.
CHANNELS_REDIS_SOCKET_TIMEOUT = env_int("CHANNELS_REDIS_SOCKET_TIMEOUT", 10)
if CHANNELS_REDIS_SOCKET_TIMEOUT < 1:
    raise EnvError(
        f"CHANNELS_REDIS_SOCKET_TIMEOUT must be at least 1 (seconds), got "
        f"{CHANNELS_REDIS_SOCKET_TIMEOUT}"
    )
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "exchange.channel_layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNELS_REDIS_SOCKET_TIMEOUT,
                    "socket_connect_timeout": CHANNELS_REDIS_SOCKET_TIMEOUT,
                }
            ],
            "prefix": env_str("CHANNELS_PREFIX", "asgi"),
            "blocking_pop_seconds": CHANNELS_REDIS_SOCKET_TIMEOUT / 2,
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "wallet"
LOGOUT_REDIRECT_URL = "home"

# django-allauth: email is the login; TOTP is the second factor.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Exchange")
# TOTP secrets and recovery-code seeds are stored encrypted (accounts/mfa_adapter.py).
MFA_ADAPTER = "accounts.mfa_adapter.EncryptingMFAAdapter"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "no-reply@exchange.localhost")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fa", _("Persian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Reporting: the volume summaries' days are days of this zone (an IANA name); their months
# and years exist in the Gregorian and the Jalali calendar. Fee tiers compare each user's
# 30-day quote volume in this reference asset (reporting, markets.FeeTier).
REPORTING_TIME_ZONE = env_str("REPORTING_TIME_ZONE", "Asia/Tehran")
FEE_TIER_REFERENCE_ASSET = env_str("FEE_TIER_REFERENCE_ASSET", "USDT")

# Partner API rate limits (Binance's model, published in exchangeInfo.rateLimits and reported
# in X-MBX-* headers; exchange/api/ratelimit.py): request weight per minute per IP and per
# API key, orders per 10 s and per day per account. Staff raise them per key in the admin.
API_WEIGHT_PER_MINUTE_IP = env_int("API_WEIGHT_PER_MINUTE_IP", 6000)
API_WEIGHT_PER_MINUTE_KEY = env_int("API_WEIGHT_PER_MINUTE_KEY", 6000)
API_ORDERS_PER_10S = env_int("API_ORDERS_PER_10S", 100)
API_ORDERS_PER_DAY = env_int("API_ORDERS_PER_DAY", 200000)
# Compat RESULT/FULL order responses and cancels: the longest wait, in seconds, for the
# matching loop's outcome before answering with the order as stored (the client polls).
API_ORDER_RESULT_WAIT_SECONDS = float(env_str("API_ORDER_RESULT_WAIT_SECONDS", "2"))
# How long an Idempotency-Key (v1 POSTs that move money) is remembered.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

# Partner webhooks (accounts.webhooks; README "Webhooks"). Private, loopback, link-local and
# other non-public targets (and plain http outside DEBUG) are refused unless this is on: it
# is for tests and private deployments whose receivers live on an internal network.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
WEBHOOKS_CONNECT_TIMEOUT_SECONDS = float(env_str("WEBHOOKS_CONNECT_TIMEOUT_SECONDS", "5"))
WEBHOOKS_READ_TIMEOUT_SECONDS = float(env_str("WEBHOOKS_READ_TIMEOUT_SECONDS", "5"))
# Attempts per event before it is dead (the schedule: accounts.webhooks.deliver.retry_delay).
WEBHOOKS_MAX_ATTEMPTS = env_int("WEBHOOKS_MAX_ATTEMPTS", 16)
# Consecutive failures that open an endpoint's circuit breaker, and its first cool-down
# (doubling on each further failure, at most an hour).
WEBHOOKS_BREAKER_THRESHOLD = env_int("WEBHOOKS_BREAKER_THRESHOLD", 5)
WEBHOOKS_BREAKER_COOLDOWN_SECONDS = env_int("WEBHOOKS_BREAKER_COOLDOWN_SECONDS", 60)
# How long a claimed delivery stays invisible to other workers; a worker that dies
# mid-delivery leaves it to be retried after this. Must exceed a claimed batch's worst case
# (deliver.CLAIM_BATCH x (connect + read timeouts)).
WEBHOOKS_LEASE_SECONDS = float(env_str("WEBHOOKS_LEASE_SECONDS", "120"))
# Delivered and dead deliveries are kept this long (the pages and the API list them).
WEBHOOKS_RETENTION_DAYS = env_int("WEBHOOKS_RETENTION_DAYS", 30)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".local" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files from the ASGI process (no CDN, nothing fetched at run time);
# `./run up` collects them, and in DEBUG they are also found in place.
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "exchange.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI 3 schema of the v1 and v3 APIs (drf-spectacular) at /api/schema/, browsed at
# /api/docs/ (Swagger UI) and /api/redoc/ from drf-spectacular-sidecar's files: no CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange API",
    "DESCRIPTION": (
        "`/api/v3/...` speaks Binance's spot REST API (paths, parameters, string decimals, "
        "`{code, msg}` errors) so ccxt-based tools work by changing URLs only; `/api/v1/...` is "
        "the exchange's own resource API (`{code, message, field}` errors). Signed requests "
        "carry `X-MBX-APIKEY` and a `signature` (HMAC-SHA256 hex, or Ed25519) over the raw "
        "query string and body; see docs/api/ in the repository."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[13]",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: Redis broker; the matching loops are long-running tasks on their own queue.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE

# Encryption keys for stored HMAC API secrets and for MFA secrets (TOTP, recovery-code seed):
# Fernet keys (32 url-safe base64 bytes), comma-separated newest first to rotate
# (exchange/encryption.py). MFA_ENCRYPTION_KEY defaults to the API key's value; set it to
# keep the two apart. Parsed here, so a malformed key stops start-up with its name.
API_KEY_ENCRYPTION_KEY = env_secret(
    "API_KEY_ENCRYPTION_KEY", dev_default="ZGV2LW9ubHkta2V5LWNoYW5nZS1tZS0wMTIzNDU2Nzg="
)
parse_fernet_keys("API_KEY_ENCRYPTION_KEY", API_KEY_ENCRYPTION_KEY)
MFA_ENCRYPTION_KEY = env_str("MFA_ENCRYPTION_KEY", API_KEY_ENCRYPTION_KEY)
parse_fernet_keys("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
API_SIGNATURE_MAX_RECV_WINDOW_MS = 60_000
API_SIGNATURE_DEFAULT_RECV_WINDOW_MS = 5_000

# The ledger auditor (accounts.checks) without accounts importing other apps: dotted paths
# to callables returning required holds {(user_id, asset_id): Decimal}, and extra checks
# returning lists of violation strings.
LEDGER_HOLD_SOURCES: list[str] = ["trading.holds.open_order_holds"]
LEDGER_EXTRA_CHECKS: list[str] = ["trading.holds.check_orders"]
# Liveness checks of the same auditor (check_ledger, the periodic audit task): dotted paths
# to callables taking max_age_seconds and returning violations; work older than
# LIVENESS_MAX_AGE_SECONDS (unmatched, unsettled, unpublished) is a violation.
LIVENESS_CHECKS: list[str] = [
    "trading.liveness.accepted_but_unmatched",
    "trading.liveness.matched_but_unsettled",
    "trading.liveness.outbox_unpublished",
]
LIVENESS_MAX_AGE_SECONDS = env_int("LIVENESS_MAX_AGE_SECONDS", 30)
# The matching and settlement loops' database sessions (trading.apps): a loop process that
# is stopped or dead inside a transaction loses its session (and its row locks) after
# LOOP_DB_IDLE_IN_TRANSACTION_MS; a successor waits at most LOOP_DB_LOCK_TIMEOUT_MS for a
# lock before it retries. Settlement's longest pause between two statements of one batch
# is well under a second, so the idle limit only ever hits a process that stopped.
LOOP_DB_IDLE_IN_TRANSACTION_MS = env_int("LOOP_DB_IDLE_IN_TRANSACTION_MS", 3_000)
LOOP_DB_LOCK_TIMEOUT_MS = env_int("LOOP_DB_LOCK_TIMEOUT_MS", 3_000)
LOOP_DB_STATEMENT_TIMEOUT_MS = env_int("LOOP_DB_STATEMENT_TIMEOUT_MS", 60_000)
# place_order commits the orders a process's threads place at the same moment in one
# transaction (trading.services.accept_batch); off: one transaction per order.
ACCEPT_BATCHING = env_bool("ACCEPT_BATCHING", True)
# The demo market maker (`manage.py demo_maker`, started by `./run up`) quotes the demo
# markets from its own funded account; never wanted on a real exchange, so off unless DEBUG.
DEMO_MAKER_ENABLED = env_bool("DEMO_MAKER_ENABLED", DEBUG)

# Security: all on unless DEBUG; `check --deploy` stays silent with production values.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
