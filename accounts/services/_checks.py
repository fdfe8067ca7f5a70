"""Small validation helpers shared by the accounts services (pure, or one-row reads)."""

from __future__ import annotations

import re

from accounts.errors import InvalidInput, PermissionDeniedError, UnknownAsset
from accounts.models import Asset, User

_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: no bidi or homoglyphs


def check_reference(value: object, *, field: str, max_length: int) -> str:
    """Return `value` if it is 1..max_length printable ASCII characters without spaces."""
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise InvalidInput(
            f"Must be 1 to {max_length} characters.", field=field, code=f"{field}_invalid"
        )
    if not _PRINTABLE.fullmatch(value):
        raise InvalidInput(
            "Must be printable ASCII without spaces.", field=field, code=f"{field}_invalid"
        )
    return value


def check_text(value: object, *, field: str, max_length: int) -> str:
    """Return `value` stripped if it is 1..max_length characters of printable text."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > max_length or not text.isprintable():
        raise InvalidInput(
            f"Must be 1 to {max_length} printable characters.",
            field=field,
            code=f"{field}_invalid",
        )
    return text


def check_staff(staff: User) -> None:
    """Refuse a non-staff or inactive actor for a staff decision."""
    if not (staff.pk and staff.is_staff and staff.is_active):
        raise PermissionDeniedError("Only staff may do this.", field="staff")


def fresh_asset(asset: Asset) -> Asset:
    """Re-read the asset by id (its fee and limits may have changed); UnknownAsset if gone."""
    found = Asset.objects.filter(pk=asset.pk).first() if asset.pk else None
    if found is None:
        raise UnknownAsset("Unknown asset.", field="asset")
    return found
