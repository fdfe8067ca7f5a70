"""Partner API rate limits (Binance's model): request weight and order counts in Redis.

What partners program against (docs/api/rate-limits.md):

- **Request weight per minute.** Each view has a `weight` (an int, or a method of the
  request). A request draws from exactly one bucket: a request authenticated by an API key
  from that key's bucket (API_WEIGHT_PER_MINUTE_KEY, or the key's `weight_per_minute`), any
  other request from its IP's bucket (API_WEIGHT_PER_MINUTE_IP). So one key's traffic does
  not starve another key or the public endpoints behind the same IP, and a staff override
  on a key really raises that key's ceiling. `X-MBX-USED-WEIGHT-1M` reports the bucket's
  use after this request. A refused request still counts (as Binance does), so a client
  that keeps sending only digs deeper.
- **Orders per 10 s and per day, per account.** A view that places orders says how many
  with `order_count` (an int, or a method of the request: a batch counts its items).
  Limits: API_ORDERS_PER_10S / API_ORDERS_PER_DAY, or the requesting key's
  `orders_per_10s` / `orders_per_day`. All or nothing: an order request is counted in both
  windows only if it fits both, so orders refused by one window do not eat the other.
  Responses to order requests carry `X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1D`.
- **Windows are fixed and aligned** to the clock (the minute, the 10-second slot, the UTC
  day), as Binance's are: every counter resets at the same moment for everyone.
- **Exceeding** answers 429 with `Retry-After` (seconds until the refusing window resets):
  weight -1003 "Too much request weight used; ...", orders -1015 "Too many new orders; ...".
- **Bans.** An IP that gets more than BAN_AFTER_REFUSALS refusals in one minute (it kept
  sending after its 429) is banned: 418 with `Retry-After`, -1003 "Way too much request
  weight used; IP banned until <ms>...". The first ban lasts 2 minutes; each further ban
  within BAN_MEMORY_SECONDS of the last one ending doubles, up to 3 days (Binance's range).

Why a Lua script and not the `limits` library (5.8.0, considered, not a dependency): its
FixedWindowRateLimiter `hit()` returns only a bool, so the used count the headers need would
be a second, non-atomic read; its window starts at a key's first hit instead of on the
minute; its key embeds the limit's amount, so a staff change of a key's limit would restart
the key's count; and it cannot charge two windows all-or-nothing (orders per 10 s and per
day). `RedisStorage.incr` alone is atomic but is one counter per round trip. The script
below does the ban check, the weight, both order windows, the refusal count and the ban
escalation in one atomic EVALSHA: one round trip per request, no interleaving between
concurrent requests of one client.

Redis down: **fail open**. A rate-limit check that cannot reach Redis lets the request
through without usage headers and logs a warning; the client short socket timeouts and a
one-second breaker keep a dead Redis from adding latency to every request. Reasoning:
the limits protect capacity, not money. Every money rule (holds, balance guards, order
validation) is enforced by PostgreSQL in the services, and order placement needs Redis
itself (the matching streams), so an outage cannot be used to push orders past the limit
into the book; failing closed would instead turn a Redis blip into a whole-API outage,
market data and cancels included, exactly when partners most need to cancel.

Hooks: compat views (exchange.api.binance.base.BinanceView) call `refuse_if_banned` before
authentication, `charge` in `initial()` after it and add `headers` in `finalize_response`;
v1 views call the same three.
A request refused before `charge` (bad signature, missing permission) is still counted
against its IP's bucket by `headers`, with weight 1.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from accounts.http import client_ip
from accounts.models import ApiKey, User
from accounts.services.audit import ActorContext, record_audit
from exchange.errors import DomainError

log = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit"
# More refused requests than this in one minute from one IP (it kept going after its 429)
# earn a ban. Binance does not publish its number; 10 is a few seconds of a tight retry loop.
BAN_AFTER_REFUSALS = 10
BAN_FIRST_SECONDS = 120  # Binance: "from 2 minutes ..."
BAN_MAX_SECONDS = 3 * 24 * 3600  # "... to 3 days"
# A ban's level is remembered this long after the ban ends; a clean day starts over at 2 min.
BAN_MEMORY_SECONDS = 24 * 3600
# Redis for a rate-limit check: fail fast (fail open) rather than hold the request.
SOCKET_TIMEOUT_SECONDS = 0.5
# After a Redis failure, skip the check for this long instead of paying the timeout again.
BREAKER_SECONDS = 1.0
# Staff overrides above these are typos, not decisions (docs/api/rate-limits.md).
# A process refuses a banned IP from memory, before authentication, for at most this long
# before it asks Redis again (refuse_if_banned); and remembers at most this many IPs.
BAN_SEEN_SECONDS = 5
BANS_REMEMBERED = 10_000
MAX_WEIGHT_PER_MINUTE = 10_000_000
MAX_ORDERS_PER_10S = 100_000
MAX_ORDERS_PER_DAY = 100_000_000

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDERS_10S_HEADER = "X-MBX-ORDER-COUNT-10S"
ORDERS_1D_HEADER = "X-MBX-ORDER-COUNT-1D"

_MINUTE_MS = 60_000
_TEN_SECONDS_MS = 10_000
_DAY_MS = 86_400_000
_USAGE_ATTRIBUTE = "_exchange_ratelimit_usage"
_FAILED_OPEN = object()  # stored instead of a Usage when Redis could not be asked

# KEYS: 1 ban, 2 ban level, 3 refusals this minute, 4 weight bucket, 5 orders 10 s,
#       6 orders day.
# ARGV: 1 weight, 2 weight limit, 3 weight window ttl ms, 4 orders (0: not an order request),
#       5 limit 10 s, 6 ttl 10 s ms, 7 limit day, 8 ttl day ms, 9 refusals before a ban
#       (-1: never refuse, only count), 10 refusal window ttl ms, 11 first ban s,
#       12 max ban s, 13 ban memory s.
# Returns {status, ban ms left, used weight, orders 10 s, orders day}; status 0 ok,
# 1 weight refused, 2 orders refused (10 s), 3 orders refused (day), 4 banned.
_SCRIPT = """
local ban_left = redis.call('PTTL', KEYS[1])
if ban_left > 0 then
  return {4, ban_left, tonumber(redis.call('GET', KEYS[4]) or '0'), 0, 0}
end
local weight = tonumber(ARGV[1])
local used
if weight > 0 then
  used = redis.call('INCRBY', KEYS[4], weight)
  if used == weight then
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
  end
else
  used = tonumber(redis.call('GET', KEYS[4]) or '0')
end
local orders = tonumber(ARGV[4])
local in_10s, in_day = 0, 0
if orders > 0 then
  in_10s = tonumber(redis.call('GET', KEYS[5]) or '0')
  in_day = tonumber(redis.call('GET', KEYS[6]) or '0')
end
local refuse_after = tonumber(ARGV[9])
if refuse_after < 0 then
  return {0, 0, used, in_10s, in_day}
end
local status = 0
if used > tonumber(ARGV[2]) then
  status = 1
elseif orders > 0 then
  if in_10s + orders > tonumber(ARGV[5]) then
    status = 2
  elseif in_day + orders > tonumber(ARGV[7]) then
    status = 3
  else
    in_10s = redis.call('INCRBY', KEYS[5], orders)
    if in_10s == orders then redis.call('PEXPIRE', KEYS[5], ARGV[6]) end
    in_day = redis.call('INCRBY', KEYS[6], orders)
    if in_day == orders then redis.call('PEXPIRE', KEYS[6], ARGV[8]) end
  end
end
if status == 0 then
  return {0, 0, used, in_10s, in_day}
end
local refused = redis.call('INCR', KEYS[3])
if refused == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[10]) end
if refused <= refuse_after then
  return {status, 0, used, in_10s, in_day}
end
local level = redis.call('INCR', KEYS[2])
local seconds = math.min(tonumber(ARGV[11]) * 2 ^ (level - 1), tonumber(ARGV[12]))
redis.call('SET', KEYS[1], '1', 'PX', math.floor(seconds * 1000))
redis.call('EXPIRE', KEYS[2], math.floor(seconds + tonumber(ARGV[13])))
redis.call('DEL', KEYS[3])
return {4, math.floor(seconds * 1000), used, in_10s, in_day}
"""

_OK, _WEIGHT, _ORDERS_10S, _ORDERS_DAY, _BANNED = 0, 1, 2, 3, 4


class RateLimited(DomainError):
    """A request over one of its limits (429) or from a banned IP (418).

    A DomainError so the v1 handler renders {code, message, field}; `binance_code` and
    `binance_message` are what the compat handler renders (errors.from_domain_error). The
    `Retry-After` header is added by `headers()` in finalize_response, for both APIs.
    """

    code = "rate_limited"
    status = 429

    def __init__(
        self, message: str, *, binance_code: int, status: int, code: str, retry_after: int
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.binance_code = binance_code
        self.binance_message = message
        self.retry_after = retry_after  # seconds; headers() sends it too


class InvalidRateLimit(DomainError):
    """A staff override of a key's limits that is not a whole number in range."""

    code = "rate_limit_invalid"


@dataclass(frozen=True, slots=True)
class Usage:
    """What one request used, for its response headers."""

    weight: int
    orders_10s: int | None  # None: not an order request
    orders_day: int | None
    retry_after: int | None  # seconds; set when the request was refused


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one request is held to."""

    weight: int
    orders_10s: int
    orders_day: int


def published_limits() -> list[dict[str, object]]:
    """exchangeInfo.rateLimits: the defaults, in Binance's shape."""
    return [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": settings.API_WEIGHT_PER_MINUTE_IP,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": settings.API_ORDERS_PER_10S,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": settings.API_ORDERS_PER_DAY,
        },
    ]


def limits_for(api_key: ApiKey | None) -> Limits:
    """The settings' defaults, with the key's staff overrides where set."""
    if api_key is None:
        return Limits(
            weight=settings.API_WEIGHT_PER_MINUTE_IP,
            orders_10s=settings.API_ORDERS_PER_10S,
            orders_day=settings.API_ORDERS_PER_DAY,
        )
    return Limits(
        weight=_or_default(api_key.weight_per_minute, settings.API_WEIGHT_PER_MINUTE_KEY),
        orders_10s=_or_default(api_key.orders_per_10s, settings.API_ORDERS_PER_10S),
        orders_day=_or_default(api_key.orders_per_day, settings.API_ORDERS_PER_DAY),
    )


def charge(request: Any, view: Any) -> None:
    """Count this request against its limits; raise RateLimited (429 / 418) when over.

    `request` is DRF's Request (authenticated already: the bucket depends on the key),
    `view` the APIView (its `weight` and `order_count`). Any: DRF's request and any view.
    A refused request has changed nothing but the counters: it is refused before the view
    runs. Redis unreachable: the request goes through (fail open, see the module's note).
    """
    http = _http_request(request)
    api_key = request.auth if isinstance(request.auth, ApiKey) else None
    user = request.user if isinstance(getattr(request, "user", None), User) else None
    orders = _amount(getattr(view, "order_count", 0), request) if user is not None else 0
    weight = _amount(getattr(view, "weight", 1), request)
    limits = limits_for(api_key)
    bucket = f"key:{api_key.pk}" if api_key is not None else f"ip:{_ip(http)}"
    now_ms = _now_ms()
    answer = _run(
        http,
        now_ms=now_ms,
        bucket=bucket,
        account=user.pk if user is not None else 0,
        weight=weight,
        orders=orders,
        limits=limits,
        refusals=BAN_AFTER_REFUSALS,
    )
    if answer is None:
        setattr(http, _USAGE_ATTRIBUTE, _FAILED_OPEN)
        return
    status, ban_left_ms, used, in_10s, in_day = answer
    retry_after = _retry_after(status, ban_left_ms, now_ms)
    setattr(
        http,
        _USAGE_ATTRIBUTE,
        Usage(
            weight=used,
            orders_10s=in_10s if orders > 0 else None,
            orders_day=in_day if orders > 0 else None,
            retry_after=retry_after,
        ),
    )
    if status == _BANNED:
        _remember_ban(_ip(http), now_ms, ban_left_ms)
    if status != _OK:
        wait = retry_after or 1  # always set for a refusal
        raise _refusal(status, limits, now_ms=now_ms, ban_left_ms=ban_left_ms, retry_after=wait)


def refuse_if_banned(request: Any) -> None:
    """Refuse a request from an IP this process saw banned, before it is authenticated.

    Authentication costs a database read and a signature check; a banned client that keeps
    sending should not get them. Each process remembers the bans its own `charge` calls met
    (BAN_SEEN_SECONDS at most, then the next request asks Redis again, so a ban a staff
    member lifts ends within that), and refuses from memory: no Redis round trip, no
    database. A process that has not yet met the ban authenticates once, and `charge`
    refuses it from Redis as before.
    """
    http = _http_request(request)
    ip = _ip(http)
    seen = _banned_here.get(ip)
    if seen is None:
        return
    recheck_at, ends_at = seen
    now_ms = _now_ms()
    if now_ms >= recheck_at:
        _banned_here.pop(ip, None)
        return
    ban_left_ms = ends_at - now_ms
    retry_after = _retry_after(_BANNED, ban_left_ms, now_ms)
    wait = retry_after or 1
    setattr(http, _USAGE_ATTRIBUTE, Usage(weight=0, orders_10s=None, orders_day=None,
                                          retry_after=wait))  # fmt: skip
    raise _refusal(_BANNED, limits_for(None), now_ms=now_ms, ban_left_ms=ban_left_ms,
                   retry_after=wait)  # fmt: skip


def _remember_ban(ip: str, now_ms: int, ban_left_ms: int) -> None:
    if len(_banned_here) >= BANS_REMEMBERED:
        forget_bans()  # a flood of distinct IPs: forget, Redis still has every ban
    _banned_here[ip] = (now_ms + min(ban_left_ms, BAN_SEEN_SECONDS * 1000), now_ms + ban_left_ms)


def headers(request: Any) -> dict[str, str]:
    """The X-MBX-* usage headers (and Retry-After when refused) for this request's response.

    A request that never reached `charge` (refused by authentication or permissions) is
    counted here against its IP's bucket with weight 1, so failed signatures are not free.
    """
    http = _http_request(request)
    usage = getattr(http, _USAGE_ATTRIBUTE, None)
    if usage is None:
        usage = _charge_late(http)
    if not isinstance(usage, Usage):
        return {}
    out = {WEIGHT_HEADER: str(usage.weight)}
    if usage.orders_10s is not None and usage.orders_day is not None:
        out[ORDERS_10S_HEADER] = str(usage.orders_10s)
        out[ORDERS_1D_HEADER] = str(usage.orders_day)
    if usage.retry_after is not None:
        out["Retry-After"] = str(usage.retry_after)
    return out


# --- staff overrides (the ApiKey admin)

LIMIT_FIELDS = ("weight_per_minute", "orders_per_10s", "orders_per_day")
_MAXIMA = {
    "weight_per_minute": MAX_WEIGHT_PER_MINUTE,
    "orders_per_10s": MAX_ORDERS_PER_10S,
    "orders_per_day": MAX_ORDERS_PER_DAY,
}


def clean_limit(name: str, value: object) -> int | None:
    """One override, checked: None (use the setting) or a whole number 1..maximum."""
    if name not in _MAXIMA:
        raise InvalidRateLimit(f"Not a rate-limit field: {name}.", field=name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRateLimit(f"{name} must be a whole number.", field=name)
    if not 1 <= value <= _MAXIMA[name]:
        raise InvalidRateLimit(
            f"{name} must be between 1 and {_MAXIMA[name]} (empty: the default).", field=name
        )
    return value


def check_api_key_limits(*, api_key: ApiKey, values: Mapping[str, object]) -> dict[str, int | None]:
    """`values` (any of LIMIT_FIELDS) cleaned, and checked together with the key's other
    limits: orders per 10 s may not be above orders per day. Raises InvalidRateLimit with
    the field at fault; reads nothing but its arguments (the admin form runs it too)."""
    cleaned = {name: clean_limit(name, value) for name, value in values.items()}
    merged = {name: getattr(api_key, name) for name in LIMIT_FIELDS} | cleaned
    in_10s = _or_default(merged["orders_per_10s"], settings.API_ORDERS_PER_10S)
    in_day = _or_default(merged["orders_per_day"], settings.API_ORDERS_PER_DAY)
    if in_10s > in_day:
        blamed = "orders_per_10s" if "orders_per_10s" in cleaned else "orders_per_day"
        raise InvalidRateLimit(
            f"Orders per 10 s ({in_10s}) cannot be above orders per day ({in_day}).",
            field=blamed,
        )
    return cleaned


def set_api_key_limits(
    *,
    api_key_id: int,
    values: Mapping[str, object],
    actor: User,
    context: ActorContext | None = None,
) -> ApiKey:
    """Set a key's rate-limit overrides (any of LIMIT_FIELDS), audited with before/after.

    Applies from the key's next request (the limits are read from the key's row, which
    authentication loads per request). Raises InvalidRateLimit (with the field) for a value
    that is not None or a whole number in range, or orders per 10 s above orders per day;
    nothing is written then. Only these fields are written, on the locked row, so a
    concurrent revoke or last-used stamp is kept. No change, no audit row.
    """
    with transaction.atomic():
        rows = ApiKey.objects.select_for_update(no_key=True).defer("secret_encrypted")
        locked = rows.get(pk=api_key_id)
        cleaned = check_api_key_limits(api_key=locked, values=values)
        before = {name: getattr(locked, name) for name in cleaned}
        if before == cleaned:
            return locked
        ApiKey.objects.filter(pk=locked.pk).update(**cleaned)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        record_audit(
            action="api_key.limits_changed",
            actor=actor,
            target=locked,
            details={"before": before, "after": cleaned},
            context=context,
        )
    return locked


# --- internals


def _now_ms() -> int:
    return int(time.time() * 1000)


def _or_default(value: int | None, default: int) -> int:
    return default if value is None else value


def _amount(value: object, request: Any) -> int:
    """A view's weight or order count: an int, or a method of the request."""
    if callable(value):
        value = value(request)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"a rate-limit amount must be a non-negative int, got {value!r}")
    return value


def _http_request(request: Any) -> HttpRequest:
    """Django's request under DRF's (state lives there: both APIs see the same object)."""
    inner = getattr(request, "_request", request)
    return inner if isinstance(inner, HttpRequest) else request


def _ip(http: HttpRequest) -> str:
    return client_ip(http) or "unknown"


def _keys(*, now_ms: int, bucket: str, account: int, ip: str) -> list[str]:
    minute = now_ms // _MINUTE_MS
    return [
        f"{KEY_PREFIX}:ban:{ip}",
        f"{KEY_PREFIX}:ban-level:{ip}",
        f"{KEY_PREFIX}:refused:{ip}:{minute}",
        f"{KEY_PREFIX}:weight:{bucket}:{minute}",
        f"{KEY_PREFIX}:orders-10s:{account}:{now_ms // _TEN_SECONDS_MS}",
        f"{KEY_PREFIX}:orders-1d:{account}:{now_ms // _DAY_MS}",
    ]


def _ttl_ms(now_ms: int, window_ms: int) -> int:
    """Until the window's end, plus a second so a slow clock never reads an expired key."""
    return window_ms - now_ms % window_ms + 1000


def _run(
    http: HttpRequest,
    *,
    now_ms: int,
    bucket: str,
    account: int,
    weight: int,
    orders: int,
    limits: Limits,
    refusals: int,
) -> tuple[int, int, int, int, int] | None:
    """The script's answer, or None when Redis could not be asked (fail open)."""
    if time.monotonic() < _breaker.open_until:
        return None
    keys = _keys(now_ms=now_ms, bucket=bucket, account=account, ip=_ip(http))
    argv = [
        weight,
        limits.weight,
        _ttl_ms(now_ms, _MINUTE_MS),
        orders,
        limits.orders_10s,
        _ttl_ms(now_ms, _TEN_SECONDS_MS),
        limits.orders_day,
        _ttl_ms(now_ms, _DAY_MS),
        refusals,
        _ttl_ms(now_ms, _MINUTE_MS),
        BAN_FIRST_SECONDS,
        BAN_MAX_SECONDS,
        BAN_MEMORY_SECONDS,
    ]
    try:
        raw = _script()(keys=keys, args=argv)
    except redis.RedisError as exc:
        _breaker.open_until = time.monotonic() + BREAKER_SECONDS
        log.warning("rate limits not checked (failing open for %ss): %s", BREAKER_SECONDS, exc)
        return None
    status, ban_left, used, in_10s, in_day = (int(part) for part in raw)
    return status, ban_left, used, in_10s, in_day


def _charge_late(http: HttpRequest) -> Usage | object:
    """Count a request that never reached `charge` (weight 1, its IP's bucket), no refusal."""
    now_ms = _now_ms()
    answer = _run(
        http,
        now_ms=now_ms,
        bucket=f"ip:{_ip(http)}",
        account=0,
        weight=1,
        orders=0,
        limits=limits_for(None),
        refusals=-1,
    )
    usage: Usage | object = _FAILED_OPEN
    if answer is not None:
        _status, _ban_left, used, _in_10s, _in_day = answer
        usage = Usage(weight=used, orders_10s=None, orders_day=None, retry_after=None)
    setattr(http, _USAGE_ATTRIBUTE, usage)
    return usage


def _retry_after(status: int, ban_left_ms: int, now_ms: int) -> int | None:
    window = {_WEIGHT: _MINUTE_MS, _ORDERS_10S: _TEN_SECONDS_MS, _ORDERS_DAY: _DAY_MS}
    if status == _OK:
        return None
    wait_ms = ban_left_ms if status == _BANNED else window[status] - now_ms % window[status]
    return max(1, math.ceil(wait_ms / 1000))


def _refusal(
    status: int, limits: Limits, *, now_ms: int, ban_left_ms: int, retry_after: int
) -> RateLimited:
    if status == _BANNED:
        until = now_ms + ban_left_ms
        return RateLimited(
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            binance_code=-1003,
            status=418,
            code="ip_banned",
            retry_after=retry_after,
        )
    if status == _WEIGHT:
        return RateLimited(
            "Too much request weight used; current limit is "
            f"{limits.weight} request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
            binance_code=-1003,
            status=429,
            code="rate_limited",
            retry_after=retry_after,
        )
    limit, interval = (
        (limits.orders_10s, "10 SECOND") if status == _ORDERS_10S else (limits.orders_day, "DAY")
    )
    return RateLimited(
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        binance_code=-1015,
        status=429,
        code="order_rate_limited",
        retry_after=retry_after,
    )


class _Breaker:
    open_until = 0.0


_breaker = _Breaker()
# IPs this process saw banned: ip -> (when to ask Redis again, when the ban ends), in ms.
_banned_here: dict[str, tuple[int, int]] = {}
_lock = threading.Lock()
_scripts: dict[str, Callable[..., Any]] = {}  # Any: redis-py's Script returns raw replies


def _script() -> Callable[..., Any]:
    """The registered script on this process's rate-limit client (short timeouts)."""
    url: str = settings.REDIS_URL
    script = _scripts.get(url)
    if script is None:
        with _lock:
            script = _scripts.get(url)
            if script is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=SOCKET_TIMEOUT_SECONDS,
                    socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                )
                script = client.register_script(_SCRIPT)
                _scripts[url] = script
    return script


def reset_clients() -> None:
    """Forget the cached clients, the breaker and the bans seen (tests that change REDIS_URL)."""
    with _lock:
        _scripts.clear()
    _breaker.open_until = 0.0
    forget_bans()


def forget_bans() -> None:
    """Forget the bans this process remembers (refuse_if_banned); Redis keeps its own."""
    _banned_here.clear()
