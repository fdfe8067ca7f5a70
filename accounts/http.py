"""Facts about the HTTP request that services record (the client's IP address)."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from accounts.services.audit import ActorContext


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


def actor_context(request: HttpRequest | None) -> ActorContext:
    """The acting user and client IP of a request, for services that audit what they do."""
    if request is None:
        return ActorContext.system()
    user = getattr(request, "user", None)
    acting = user if user is not None and getattr(user, "is_authenticated", False) else None
    return ActorContext(user=acting, ip_address=client_ip(request))
