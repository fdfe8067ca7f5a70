"""Typed readers for settings that come from the environment.

Each reader rejects malformed values instead of guessing, so a typo in production
configuration stops the process at start-up rather than silently changing behaviour.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvError(ValueError):
    """Raised when an environment variable is present but malformed."""


def env_str(name: str, default: str) -> str:
    """Return the variable, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    """Return a boolean; only the usual two families of spellings are accepted."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(f"{name} must be one of {sorted(_TRUE | _FALSE)}, got {raw!r}")


def env_int(name: str, default: int) -> int:
    """Return an integer."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise EnvError(f"{name} must be an integer, got {raw!r}") from exc


def env_decimal(name: str, default: Decimal) -> Decimal:
    """Return a finite Decimal."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise EnvError(f"{name} must be a decimal number, got {raw!r}") from exc
    if not value.is_finite():
        raise EnvError(f"{name} must be finite, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated list with blanks removed."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, *, dev_default: str | None = None) -> str:
    """Return a secret.

    With DEBUG off there is no default: production must provide every secret. The
    development default exists only so a newcomer's first run works without set-up.
    """
    raw = os.environ.get(name)
    if raw:
        return raw
    if dev_default is not None and env_bool("DEBUG", True):
        return dev_default
    raise EnvError(f"{name} must be set when DEBUG is off")
