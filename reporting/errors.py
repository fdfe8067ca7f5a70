"""Business-rule errors of the reporting app, each with a stable machine `code` and `field`.

An unknown market is markets' own `MarketNotFound` (code "market_not_found"), so every app
reports it the same way.
"""

from __future__ import annotations

from exchange.errors import DomainError, NotFound


class InvalidCalendar(DomainError):
    """The calendar is neither "gregorian" nor "jalali"."""

    code = "calendar_invalid"


class InvalidDate(DomainError):
    """A date is not a date (a datetime, a string, None) or lies outside the supported years."""

    code = "date_invalid"


class InvalidRange(DomainError):
    """The range ends before it starts."""

    code = "range_invalid"


class RangeTooLong(DomainError):
    """The range spans more days than a report may cover."""

    code = "range_too_long"


class InvalidUser(DomainError):
    """The user is not a saved user (an id, a string, an unsaved instance)."""

    code = "user_invalid"


class UserNotFound(NotFound):
    """No such user."""

    code = "user_not_found"
