"""Where a webhook may be sent: URL rules and the SSRF guard.

A URL is http(s) only (https outside DEBUG, unless WEBHOOKS_ALLOW_PRIVATE_TARGETS), at most
MAX_URL_CHARS, with an ASCII host and no credentials. Its host must resolve only to public
addresses: loopback, private, link-local (cloud metadata at 169.254.169.254), multicast,
reserved, unspecified and the other non-global ranges are refused, IPv4-mapped IPv6 forms
included, unless WEBHOOKS_ALLOW_PRIVATE_TARGETS. A host with one bad address among good ones
is refused too: the connection could go to either.

Checked at registration (a clear error) and again before every delivery, whose connection
then goes to the checked address itself (accounts.webhooks.deliver), so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from accounts.errors import InvalidInput

MAX_URL_CHARS = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidInput):
    """The URL's host is (or resolves to) an address webhooks must not reach."""

    code = "url_forbidden"


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (`address`, one of the host's checked addresses) and
    what to ask for (`host_header`, `path`)."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, never empty
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> ParsedUrl:
    """The URL's parts, or InvalidInput (field `url`) saying what is wrong. Pure."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("Enter the URL of your receiver.", field="url", code="url_required")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(
            f"The URL must be at most {MAX_URL_CHARS} characters.",
            field="url",
            code="url_too_long",
        )
    if not url.isascii() or not url.isprintable() or " " in url:
        raise InvalidInput(
            "The URL must be ASCII without spaces (use the punycode form of a host name).",
            field="url",
            code="url_invalid",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("This is not a valid URL.", field="url", code="url_invalid") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInput(
            "Only http and https URLs are allowed.", field="url", code="url_scheme_invalid"
        )
    if scheme == "http" and not (settings.DEBUG or settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS):
        raise InvalidInput("The URL must use https.", field="url", code="url_https_required")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "The URL must not contain a user name or password.",
            field="url",
            code="url_credentials",
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("The URL has no host.", field="url", code="url_invalid")
    if parts.fragment:
        raise InvalidInput("The URL must not have a #fragment.", field="url", code="url_invalid")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return ParsedUrl(scheme, host, port or (443 if scheme == "https" else 80), path)


def refusal(address: IpAddress) -> str | None:
    """Why webhooks must not connect to `address`, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for reason, hit in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not global", not address.is_global),
    ):
        if hit:
            return reason
    return None


def resolve(host: str, port: int) -> list[IpAddress]:
    """The host's addresses (an IP literal is itself); [] when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[IpAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 zone index is not part of it
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_target(url: str) -> Target:
    """Parse the URL, resolve its host and refuse any non-public address (unless
    WEBHOOKS_ALLOW_PRIVATE_TARGETS). Raises InvalidInput / TargetRefused with field `url`."""
    parsed = parse_url(url)
    addresses = resolve(parsed.host, parsed.port)
    if not addresses:
        raise InvalidInput(
            f"The host {parsed.host[:100]} does not resolve.",
            field="url",
            code="url_host_unresolvable",
        )
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise TargetRefused(
                    f"Webhooks cannot be sent to {address} ({reason} address).", field="url"
                )
    return Target(parsed.scheme, parsed.host, parsed.port, parsed.path, str(addresses[0]))
