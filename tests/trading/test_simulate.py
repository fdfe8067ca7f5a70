"""The simulate command: a seeded run through the real services ends audited and clean."""

from __future__ import annotations

from io import StringIO
from typing import Any

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


def _outcome() -> dict[str, object]:
    """Every order's final state by client order id, every market's trades in seq order."""
    orders = {
        coid: rest
        for coid, *rest in Order.objects.values_list(
            "client_order_id",
            "user__email",
            "market__symbol",
            "side",
            "status",
            "filled_quantity",
            "filled_quote",
            "fee_paid",
            "hold_remaining",
        )
    }
    trades = list(
        Trade.objects.order_by("market__symbol", "seq").values_list(
            "market__symbol",
            "buy_order__client_order_id",
            "sell_order__client_order_id",
            "price",
            "quantity",
        )
    )
    return {"orders": orders, "trades": trades}


def test_the_same_seed_gives_the_same_orders_and_trades(redis_db: Any) -> None:
    def fresh_run() -> dict[str, object]:
        call_command(
            "simulate", users=5, markets=2, orders=300, seed=11, cancel_share=0.3, stdout=StringIO()
        )
        return _outcome()

    first = fresh_run()
    call_command("flush", interactive=False, verbosity=0)
    redis_db.flushdb()
    second = fresh_run()

    assert Trade.objects.exists()
    assert Order.objects.filter(status=OrderStatus.CANCELED).exists()
    assert second["trades"] == first["trades"]
    assert second["orders"] == first["orders"]
