"""Secrets stored encrypted with Fernet keys from the environment (API secrets, MFA secrets).

A key setting holds one Fernet key or several, comma-separated, newest first: the first
encrypts, every one decrypts, so a key is rotated by prepending the new one, re-encrypting
(`MultiFernet.rotate`) and later dropping the old one. Settings parse the value with
`parse_fernet_keys` at start-up, so a malformed key stops the process with a message that
names the variable instead of failing the first request that needs it.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, MultiFernet

from exchange.env import EnvError

GENERATE_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


def parse_fernet_keys(name: str, raw: str) -> tuple[str, ...]:
    """The Fernet keys of setting `name`, newest first; raises EnvError naming a bad key.

    Pure: no settings, no I/O. A Fernet key is 32 random bytes in url-safe base64 (44
    characters), which never contains a comma.
    """
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not keys:
        raise EnvError(f"{name} must hold at least one Fernet key; {GENERATE_HINT}")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError as exc:  # binascii.Error is a ValueError too
            raise EnvError(
                f"{name}: key {position} of {len(keys)} is not a Fernet key (32 url-safe "
                f"base64-encoded bytes); {GENERATE_HINT}"
            ) from exc
    return keys


@functools.lru_cache(maxsize=8)
def fernet_for(raw: str) -> MultiFernet:
    """The MultiFernet of a key setting's value (cached: building one derives the keys)."""
    return MultiFernet([Fernet(key) for key in parse_fernet_keys("key setting", raw)])
