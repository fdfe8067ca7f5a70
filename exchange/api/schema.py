"""What drf-spectacular cannot infer about the APIs: the signed-request security scheme.

Imported by exchange/urls.py so the extension is registered before the schema is built.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SignedRequestScheme(OpenApiAuthenticationExtension):
    """X-MBX-APIKEY plus a `signature` parameter over the raw query string and body."""

    target_class = "exchange.api.auth.ApiKeySignatureAuthentication"
    name = "SignedRequest"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-MBX-APIKEY",
            "description": (
                "The API key. Signed endpoints also need `timestamp` (ms), optional "
                "`recvWindow` (<= 60000) and `signature`: HMAC-SHA256 hex of the query string "
                "concatenated with the body (without the signature pair), or an Ed25519 "
                "signature (base64) for Ed25519 keys."
            ),
        }
