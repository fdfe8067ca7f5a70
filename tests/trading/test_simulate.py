"""The simulate command: a seeded run through the real services ends audited and clean; a
seed always draws the same workload; its assets and markets are never shown to users."""

from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.selectors import get_asset, list_assets
from markets.models import Market
from markets.selectors import list_markets
from tests.factories import AssetFactory, MarketFactory, funded_user
from trading.models import OPEN_STATUSES, Order, OrderStatus, Trade
from trading.workload import Cancel, OrderFlow


@pytest.mark.parametrize(
    ("seed", "users", "markets", "orders", "cancel_share", "digest"),
    [
        # simulate's defaults
        (1, 10, 1, 1000, 0.10, "a8aba569a554f21816f67aa4ac0a05a2fba77b81eb107f593aed9ac7fd37a699"),
        # the fault matrix's workload (tests/faults/scenarios.Workload), seed 7
        (7, 8, 2, 1200, 0.20, "8d92b6b09c24417bb9498f21a6a040fd55390b5bff1af36341c846e002ee7927"),
    ],
)
def test_a_seed_draws_the_same_orders_as_always(
    seed: int, users: int, markets: int, orders: int, cancel_share: float, digest: str
) -> None:
    # The digests were taken from simulate before its workload moved to trading.workload:
    # a seed must keep drawing the same operations, or recorded runs no longer compare.
    flow = OrderFlow(seed=seed, users=users, markets=markets, cancel_share=cancel_share)
    drawn: list[tuple[object, ...]] = []
    for _ in range(orders):
        op = flow.next()
        if isinstance(op, Cancel):
            drawn.append(("cancel", op.n, op.user, op.market, op.client_order_id))
            continue
        spec = op.spec
        drawn.append(
            (
                "place",
                *(op.n, op.user, op.market, spec.side, spec.order_type, spec.time_in_force),
                *(str(spec.price), str(spec.quantity), str(spec.quote_amount)),
                spec.client_order_id,
            )
        )
        flow.accepted(op)

    assert sum(op[0] == "cancel" for op in drawn) > 0
    assert hashlib.sha256(repr(drawn).encode()).hexdigest() == digest


def test_a_cancel_targets_only_placements_the_exchange_accepted() -> None:
    flow = OrderFlow(seed=5, users=1, markets=1, cancel_share=0.5)
    accepted: set[str | None] = set()
    for n in range(400):
        op = flow.next()
        if isinstance(op, Cancel):
            assert op.client_order_id in accepted
        elif n % 3:  # every third placement refused
            flow.accepted(op)
            accepted.add(op.spec.client_order_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
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


@pytest.mark.django_db(transaction=True)
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db", "assets")
def test_simulated_assets_and_markets_are_never_listed_to_users(client: Client) -> None:
    call_command("simulate", markets=2, users=2, setup_only=True, stdout=StringIO())
    trader = funded_user(email="trader@example.com", holdings={get_asset(code="USDT"): "50"})

    home = client.get(reverse("home")).content.decode()
    client.force_login(trader)
    wallet = client.get(reverse("wallet")).content.decode()

    for page in (home, wallet):
        assert "BTC" in page
        assert "SIM0" not in page
        assert "SIM1" not in page
    assert "SIM0" not in [a.code for a in list_assets()]
    assert [m.symbol for m in list_markets()] == []
    assert [m.symbol for m in list_markets(include_unlisted=True)] == ["SIM0-USDT", "SIM1-USDT"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_a_run_unlists_what_an_older_run_left_listed() -> None:
    quote = AssetFactory.create(code="USDT", decimals=6)
    MarketFactory.create(base=AssetFactory.create(code="SIM0"), quote=quote, listed=True)

    call_command("simulate", markets=1, users=1, setup_only=True, stdout=StringIO())

    assert list_assets().filter(code="SIM0").count() == 0
    assert list_markets().count() == 0
    assert Market.objects.get(symbol="SIM0-USDT").listed is False
