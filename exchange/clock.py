"""The time settlement and accept stamp rows with: the wall clock, or a shifted one.

`now()` is `django.utils.timezone.now()` unless `shifted()` moved this process's clock:
the seed_history command uses that to settle a real trading history (real orders, real
settlement batches, the real ledger) at times in the past, so charts and reports have
something to show on a fresh install. Nothing else shifts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    """The current time (aware, UTC), plus this process's shift if one is in force."""
    if _offset:
        return timezone.now() + _offset
    return timezone.now()


@contextmanager
def shifted(moment: datetime) -> Iterator[None]:
    """Within the block, `now()` starts at `moment` and runs on at the wall clock's pace.

    Process-wide (every thread sees it), not nestable: meant for a command that owns its
    process, never for a web or loop process.
    """
    global _offset  # one clock per process, by design
    previous = _offset
    _offset = moment - timezone.now()
    try:
        yield
    finally:
        _offset = previous
