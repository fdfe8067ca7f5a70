"""listenKeys of the user data stream: POST/PUT/DELETE /api/v3/userDataStream, in Redis.

A key is 64 random characters bound to one API key (so to one user) and lives 60 minutes
after its last keepalive (LISTEN_KEY_TTL_SECONDS); POST for an API key that has a live one
returns it and extends it, as Binance does. The stream at /ws/<listenKey> checks the key
when it opens and every LISTEN_KEY_CHECK_SECONDS after: an expired or deleted key gets a
`listenKeyExpired` event and the socket is closed. A lost Redis loses the keys: clients
then get a closed stream and POST a new key, the same as after an expiry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from trading.redis import get_redis

TTL_SECONDS = 3600
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
KEY_CHARS = 64


def _by_key(listen_key: str) -> str:
    return f"ws:listenkey:{listen_key}"


def _by_api_key(api_key_id: int) -> str:
    return f"ws:listenkey-of:{api_key_id}"


@dataclass(frozen=True, slots=True)
class Owner:
    user_id: int
    api_key_id: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def looks_like_key(value: str) -> bool:
    return len(value) == KEY_CHARS and all(c in _ALPHABET for c in value)


def create(*, user_id: int, api_key_id: int) -> str:
    """The API key's live listenKey (extended), or a new one."""
    client = get_redis()
    current = client.get(_by_api_key(api_key_id))
    if current is not None:
        listen_key = _text(current)
        if keepalive(listen_key=listen_key, api_key_id=api_key_id):
            return listen_key
    listen_key = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_CHARS))
    pipe = client.pipeline(transaction=True)
    pipe.set(_by_key(listen_key), f"{user_id}:{api_key_id}", ex=TTL_SECONDS)
    pipe.set(_by_api_key(api_key_id), listen_key, ex=TTL_SECONDS)
    pipe.execute()
    return listen_key


def owner(listen_key: str) -> Owner | None:
    if not looks_like_key(listen_key):
        return None
    raw = get_redis().get(_by_key(listen_key))
    if raw is None:
        return None
    user_id, api_key_id = _text(raw).split(":")
    return Owner(int(user_id), int(api_key_id))


def keepalive(*, listen_key: str, api_key_id: int) -> bool:
    """Extend the key by TTL_SECONDS; False when it is not this API key's live key."""
    found = owner(listen_key)
    if found is None or found.api_key_id != api_key_id:
        return False
    pipe = get_redis().pipeline(transaction=True)
    pipe.expire(_by_key(listen_key), TTL_SECONDS)
    pipe.expire(_by_api_key(api_key_id), TTL_SECONDS)
    pipe.execute()
    return True


def delete(*, listen_key: str, api_key_id: int) -> bool:
    found = owner(listen_key)
    if found is None or found.api_key_id != api_key_id:
        return False
    get_redis().delete(_by_key(listen_key), _by_api_key(api_key_id))
    return True
