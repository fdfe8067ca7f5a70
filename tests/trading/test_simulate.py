"""The simulate command: a seeded run through the real services ends audited and clean."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from trading.models import OPEN_STATUSES, Order, OrderStatus, Trade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


def test_simulate_settles_everything_and_the_ledger_holds() -> None:
    out = StringIO()

    call_command("simulate", users=6, markets=2, orders=400, seed=3, stdout=out)

    text = out.getvalue()
    print(text.strip().splitlines()[0])  # noqa: T201 - the run's figures
    assert "check_ledger: all invariants hold" in text
    assert not Order.objects.filter(status=OrderStatus.NEW, accepted_seq__isnull=True).exists()
    assert Trade.objects.exists()
    assert Order.objects.exclude(status__in=OPEN_STATUSES).filter(hold_remaining__gt=0).count() == 0
