"""The base of every business-rule error: a stable machine code, a message and a field."""

from __future__ import annotations


class DomainError(Exception):
    """A rejected request. Services raise it; they never return HTTP.

    `code` is stable and documented (clients switch on it), `message` is for people, and
    `field` names the input at fault when there is one. `status` is the HTTP status the
    API maps it to.
    """

    code: str = "invalid"
    status: int = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str | None]:
        """The error body every API and form shows: code, message, field."""
        return {"code": self.code, "message": self.message, "field": self.field}


class NotFound(DomainError):
    """The object does not exist, or belongs to someone else (the two look the same)."""

    code = "not_found"
    status = 404


class PermissionDeniedError(DomainError):
    """The principal may not do this."""

    code = "permission_denied"
    status = 403
