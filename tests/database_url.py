"""DATABASE_URL for a child process (manage.py, uvicorn) that must use the suite's own database.

Built from the connection settings the suite really uses, never from assumed defaults: with
`./run test` on a machine without PostgreSQL on 5432 the suite runs against a private
server on another port, and a URL with a hard-coded `127.0.0.1:5432` reaches the wrong
server (or none). A socket directory as HOST and an empty PORT are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode


def database_url(settings_dict: Mapping[str, Any], *, name: str | None = None) -> str:
    """A postgres:// URL that dj_database_url parses back to the same connection.

    `settings_dict` is a Django DATABASES entry (usually `connection.settings_dict`, which
    names the test database); `name` replaces its database name.
    """
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = str(settings_dict.get("PASSWORD") or "")
    credentials = f"{user}:{quote(password, safe='')}@" if password else f"{user}@" if user else ""
    host = str(settings_dict.get("HOST") or "")
    if host.startswith("/"):
        host = quote(host, safe="")  # a Unix socket directory: dj_database_url unquotes it
    elif ":" in host:
        host = f"[{host}]"  # IPv6 literal
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    database = quote(str(name or settings_dict["NAME"]), safe="")
    options = {
        key: value
        for key, value in (settings_dict.get("OPTIONS") or {}).items()
        if isinstance(value, str | int) and not isinstance(value, bool)
    }
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{credentials}{host}{port}/{database}{query}"
