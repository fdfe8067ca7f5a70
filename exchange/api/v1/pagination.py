"""Cursor pagination for v1 lists: newest first, stable under inserts, opaque cursors.

The answer is `{"results": [...], "next_cursor": str | null}`: a cursor token, not a URL,
because a signed request's URL carries its timestamp and signature, which the next request
must replace (it is signed afresh with `cursor=<token>` among its parameters). A malformed
or forged cursor is a 400 `cursor_invalid`, never a 404 or a 500.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlparse

from django.db.models import QuerySet
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from exchange.errors import DomainError

DEFAULT_LIMIT = 100
MAX_LIMIT = 500  # a page of 500 orders renders in a few ms; more is an export


class CursorInvalid(DomainError):
    code = "cursor_invalid"


class LimitInvalid(DomainError):
    code = "limit_invalid"


def _is_our_token(encoded: str) -> bool:
    """True for strict base64 of a query string with only DRF's names (o, r, p): DRF's own
    decoding skips invalid characters, so "%%%" or "nope" would read as the first page."""
    try:
        text = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
    except (ValueError, UnicodeError):
        return False
    names = {name for name, _value in parse_qsl(text, keep_blank_values=True)}
    return bool(names) and names <= {"o", "r", "p"}


class NewestFirst(CursorPagination):
    """Pages by descending primary key (every v1 list's natural order)."""

    ordering = "-pk"
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    cursor_query_param = "cursor"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return DEFAULT_LIMIT
        if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 4) or not (
            1 <= int(raw) <= MAX_LIMIT
        ):
            raise LimitInvalid(f"limit must be an integer from 1 to {MAX_LIMIT}.", field="limit")
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and not _is_our_token(encoded):
            raise CursorInvalid("The cursor is not valid.", field="cursor")
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound; anything else is a bad token too
            raise CursorInvalid("The cursor is not valid.", field="cursor") from exc
        # DRF trusts the position it decoded; a forged one would reach the WHERE clause.
        position = None if cursor is None else cursor.position
        if position is not None and not (
            isinstance(position, str)
            and position.isascii()
            and position.isdigit()
            and len(position) < 19
        ):
            raise CursorInvalid("The cursor is not valid.", field="cursor")
        return cursor

    def rows_of(self, queryset: QuerySet[Any], request: Request, view: Any) -> list[Any]:
        """The rows of this page (Any: the queryset's model)."""
        return list(self.paginate_queryset(queryset, request, view) or [])

    def next_cursor(self) -> str | None:
        link = self.get_next_link()
        if link is None:
            return None
        return parse_qs(urlparse(link).query).get(self.cursor_query_param, [None])[0]

    def answer(self, results: Any) -> dict[str, Any]:  # Any: a serializer's list
        return {"results": results, "next_cursor": self.next_cursor()}
