"""Facts about the HTTP request that services record (the client's IP address)."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's IP address, or None when unknown or malformed.

    REMOTE_ADDR only: behind a proxy, the ASGI server (uvicorn --proxy-headers with
    --forwarded-allow-ips) rewrites it from X-Forwarded-For for trusted proxies. Reading
    the header here would let any client choose the address that gets audited.
    """
    if request is None:
        return None
    raw = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None
