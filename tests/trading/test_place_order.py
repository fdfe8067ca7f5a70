"""place_order against PostgreSQL: holds to the unit, every rejection writes nothing,
idempotency on (user, client_order_id)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.amounts import LEDGER_DECIMALS, parse_amount
from accounts.errors import AccountFrozen, InsufficientFunds, InvalidAmount
from accounts.models import EntryKind, JournalEntry
from markets.errors import MarketNotFound
from markets.models import MarketStatus
from markets.selectors import get_market
from tests.conftest import balance_of, fund
from tests.trading.conftest import snapshot
from trading.engine.commands import command_from_dict
from trading.errors import DuplicateClientOrderId, InvalidOrder, MarketNotTrading
from trading.models import Order, OrderStatus, OutboxEntry
from trading.services.orders import OrderSpec, parse_order_spec, place_order
from trading.validation import check_spec_amounts

pytestmark = pytest.mark.django_db
D = Decimal


def buy_limit(price: str = "50000", quantity: str = "0.001", **kw: object) -> OrderSpec:
    return OrderSpec(side="buy", order_type="limit", price=D(price), quantity=D(quantity), **kw)  # type: ignore[arg-type]


@pytest.fixture
def funded_alice(alice, assets):
    fund(alice, assets["USDT"], "100000")
    fund(alice, assets["BTC"], "2")
    fund(alice, assets["IRT"], "100000000")
    return alice


def test_limit_buy_is_accepted_with_hold_order_ledger_and_outbox(funded_alice, btc_usdt, assets):
    order = place_order(user=funded_alice, market=btc_usdt, spec=buy_limit("50000.01", "0.00013"))

    order.refresh_from_db()
    assert order.status == OrderStatus.NEW
    assert (order.hold_asset_id, order.hold_amount, order.hold_remaining) == (
        assets["USDT"].pk,
        D("6.513002"),
        D("6.513002"),
    )
    assert len(order.client_order_id) == 32  # generated
    assert balance_of(funded_alice, assets["USDT"]) == (D("99993.486998"), D("6.513002"))
    entry = JournalEntry.objects.get(ref=f"order:{order.pk}")
    assert entry.kind == EntryKind.ORDER_HOLD
    outbox = OutboxEntry.objects.get()
    assert outbox.market_id == btc_usdt.pk
    command = command_from_dict(outbox.payload)
    assert command.order_id == order.pk  # type: ignore[union-attr]
    assert outbox.payload == {
        "type": "place_order",
        "order_id": order.pk,
        "account_id": funded_alice.pk,
        "side": "buy",
        "order_type": "limit",
        "tif": "gtc",
        "price_ticks": 5_000_001,
        "qty_lots": 13,
        "quote_budget": 0,
        "stop_ticks": 0,
        "stp_mode": "none",
        "stp_group": 0,
    }


@pytest.mark.parametrize(
    ("_case", "spec", "asset", "hold"),
    [
        (
            "limit sell",
            OrderSpec(side="sell", price=D("50000"), quantity=D("0.12345")),
            "BTC",
            "0.12345",
        ),
        (
            "limit maker buy",
            OrderSpec(
                side="buy", order_type="limit_maker", price=D("49999.99"), quantity=D("0.001")
            ),
            "USDT",
            "50.099990",
        ),
        (
            "market buy by base",
            OrderSpec(side="buy", order_type="market", quantity=D("0.001")),
            "USDT",
            "55.11",
        ),
        (
            "market buy by quote",
            OrderSpec(side="buy", order_type="market", quote_amount=D("100")),
            "USDT",
            "100.2",
        ),
        (
            "market sell",
            OrderSpec(side="sell", order_type="market", quantity=D("0.5")),
            "BTC",
            "0.5",
        ),
        (
            "stop limit buy",
            OrderSpec(
                side="buy",
                order_type="stop_limit",
                price=D("51000"),
                stop_price=D("50500"),
                quantity=D("0.01"),
            ),
            "USDT",
            "511.02",
        ),
        (
            "stop market buy",
            OrderSpec(
                side="buy", order_type="stop_market", stop_price=D("52000"), quantity=D("0.001")
            ),
            "USDT",
            "57.3144",
        ),
        (
            "stop market sell",
            OrderSpec(
                side="sell", order_type="stop_market", stop_price=D("48000"), quantity=D("0.001")
            ),
            "BTC",
            "0.001",
        ),
        (
            "ioc buy",
            OrderSpec(side="buy", price=D("50000"), quantity=D("0.001"), time_in_force="ioc"),
            "USDT",
            "50.1",
        ),
    ],
)
def test_each_order_type_holds_exactly(funded_alice, btc_usdt, assets, _case, spec, asset, hold):
    before = balance_of(funded_alice, assets[asset])

    order = place_order(user=funded_alice, market=btc_usdt, spec=spec)

    assert (order.hold_asset_id, order.hold_amount) == (assets[asset].pk, D(hold))
    assert balance_of(funded_alice, assets[asset]) == (before[0] - D(hold), before[1] + D(hold))


def test_irt_market_holds_whole_toman(funded_alice, usdt_irt, assets):
    order = place_order(
        user=funded_alice,
        market=usdt_irt,
        spec=OrderSpec(side="buy", price=D("60010"), quantity=D("2.33")),
    )

    assert order.hold_amount == D("140313")
    assert balance_of(funded_alice, assets["IRT"]) == (D("99859687"), D("140313"))


def test_raw_request_values_go_through_parse_order_spec(funded_alice, btc_usdt):
    spec = parse_order_spec(
        {"side": "sell", "type": "limit", "price": "50100.5", "quantity": "0.01"}
    )

    order = place_order(user=funded_alice, market=btc_usdt, spec=spec)

    assert (order.side, order.price, order.quantity) == ("sell", D("50100.5"), D("0.01"))


def _place_raw(user, market, **fields):
    data = {"side": "buy", "type": "limit", "price": "50000", "quantity": "0.001", **fields}
    return place_order(user=user, market=market, spec=parse_order_spec(data))


@pytest.mark.parametrize(
    ("_case", "fields", "error", "field", "code"),
    [
        ("price off tick", {"price": "50000.001"}, InvalidOrder, "price", "price_off_tick"),
        ("price zero", {"price": "0"}, InvalidAmount, "price", "amount_not_positive"),
        ("price negative", {"price": "-50000"}, InvalidAmount, "price", "amount_not_positive"),
        ("price NaN", {"price": "NaN"}, InvalidAmount, "price", "amount_invalid"),
        ("price Infinity", {"price": "Infinity"}, InvalidAmount, "price", "amount_invalid"),
        ("price 1e3", {"price": "1e3"}, InvalidAmount, "price", "amount_invalid"),
        (
            "price too precise",
            {"price": "50000.0000001"},
            InvalidOrder,
            "price",
            "price_too_precise",
        ),
        ("price 10,000 chars", {"price": "5" * 10_000}, InvalidAmount, "price", "amount_too_long"),
        ("price out of band", {"price": "60000"}, InvalidOrder, "price", "price_out_of_band"),
        (
            "quantity below lot",
            {"quantity": "0.000001"},
            InvalidOrder,
            "quantity",
            "quantity_off_lot",
        ),
        (
            "quantity below min",
            {"quantity": "0.00005"},
            InvalidOrder,
            "quantity",
            "quantity_below_minimum",
        ),
        (
            "quantity above max",
            {"quantity": "101"},
            InvalidOrder,
            "quantity",
            "quantity_above_maximum",
        ),
        (
            "below min notional",
            {"price": "45000", "quantity": "0.0001"},
            InvalidOrder,
            "quantity",
            "notional_below_minimum",
        ),
        (
            "insufficient funds",
            {"quantity": "2"},
            InsufficientFunds,
            "amount",
            "insufficient_funds",
        ),
        (
            "bad client id",
            {"client_order_id": "no spaces allowed"},
            InvalidOrder,
            "client_order_id",
            "client_order_id_invalid",
        ),
    ],
)
def test_rejected_orders_change_nothing(funded_alice, btc_usdt, _case, fields, error, field, code):
    before = snapshot()

    with pytest.raises(error) as caught:
        _place_raw(funded_alice, btc_usdt, **fields)

    assert (caught.value.field, caught.value.code) == (field, code)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("status", "code"),
    [(MarketStatus.HALTED, "market_halted"), (MarketStatus.CANCEL_ONLY, "market_cancel_only")],
)
def test_halted_and_cancel_only_markets_refuse_orders(funded_alice, btc_usdt, status, code):
    stale = get_market(symbol="BTC-USDT")
    btc_usdt.status = status
    btc_usdt.save()
    before = snapshot()

    # The caller's instance still says TRADING: the service re-reads the row.
    with pytest.raises(MarketNotTrading) as caught:
        place_order(user=funded_alice, market=stale, spec=buy_limit())

    assert caught.value.code == code
    assert snapshot() == before


def test_rule_changes_apply_to_the_next_order(funded_alice, btc_usdt):
    stale = get_market(symbol="BTC-USDT")
    place_order(user=funded_alice, market=stale, spec=buy_limit(quantity="0.001"))
    btc_usdt.min_notional = D("100")
    btc_usdt.save()

    with pytest.raises(InvalidOrder) as caught:
        place_order(user=funded_alice, market=stale, spec=buy_limit(quantity="0.001"))

    assert caught.value.code == "notional_below_minimum"


def test_frozen_user_is_refused(funded_alice, btc_usdt):
    funded_alice.is_frozen = True
    funded_alice.save()
    before = snapshot()

    with pytest.raises(AccountFrozen):
        place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())

    assert snapshot() == before


def test_user_without_any_balance_gets_insufficient_funds(bob, btc_usdt):
    before = snapshot()

    with pytest.raises(InsufficientFunds):
        place_order(user=bob, market=btc_usdt, spec=buy_limit())

    assert snapshot() == before


def test_unknown_market_is_not_found(db):
    with pytest.raises(MarketNotFound) as caught:
        get_market(symbol="DOGE-USDT")

    assert (caught.value.code, caught.value.status, caught.value.field) == (
        "market_not_found",
        404,
        "market",
    )


def test_market_buy_without_reference_price_is_refused(funded_alice, eth_usdt):
    before = snapshot()

    with pytest.raises(InvalidOrder) as caught:
        place_order(
            user=funded_alice,
            market=eth_usdt,
            spec=OrderSpec(side="buy", order_type="market", quantity=D("1")),
        )

    assert caught.value.code == "market_no_reference_price"
    assert snapshot() == before


def test_repeat_returns_the_stored_order_and_moves_nothing(funded_alice, btc_usdt):
    spec = buy_limit(client_order_id="bot-42")
    first = place_order(user=funded_alice, market=btc_usdt, spec=spec)
    after_first = snapshot()

    again = place_order(user=funded_alice, market=btc_usdt, spec=spec)

    assert again.pk == first.pk
    assert snapshot() == after_first


def test_repeat_is_answered_even_after_the_market_halts_or_funds_run_out(
    funded_alice, btc_usdt, assets
):
    spec = buy_limit(quantity="1.9", price="50000", client_order_id="all-in")
    first = place_order(user=funded_alice, market=btc_usdt, spec=spec)
    btc_usdt.status = MarketStatus.HALTED
    btc_usdt.save()
    after_first = snapshot()

    again = place_order(user=funded_alice, market=btc_usdt, spec=spec)

    assert again.pk == first.pk
    assert snapshot() == after_first


@pytest.mark.parametrize(
    ("_case", "changed"),
    [
        ("price", buy_limit(price="50000.01", client_order_id="c1")),
        ("quantity", buy_limit(quantity="0.002", client_order_id="c1")),
        (
            "side",
            OrderSpec(side="sell", price=D("50000"), quantity=D("0.001"), client_order_id="c1"),
        ),
        ("tif", buy_limit(time_in_force="ioc", client_order_id="c1")),
    ],
)
def test_same_client_id_with_another_spec_is_a_conflict(funded_alice, btc_usdt, _case, changed):
    place_order(user=funded_alice, market=btc_usdt, spec=buy_limit(client_order_id="c1"))
    before = snapshot()

    with pytest.raises(DuplicateClientOrderId) as caught:
        place_order(user=funded_alice, market=btc_usdt, spec=changed)

    assert (caught.value.code, caught.value.status) == ("duplicate_client_order_id", 409)
    assert snapshot() == before


def test_same_client_id_in_another_market_is_a_conflict(funded_alice, btc_usdt, eth_usdt):
    place_order(user=funded_alice, market=btc_usdt, spec=buy_limit(client_order_id="c2"))

    with pytest.raises(DuplicateClientOrderId):
        place_order(
            user=funded_alice,
            market=eth_usdt,
            spec=OrderSpec(side="buy", price=D("3000"), quantity=D("0.01"), client_order_id="c2"),
        )


def test_client_ids_are_per_user(funded_alice, bob, btc_usdt, assets):
    fund(bob, assets["USDT"], "1000")

    mine = place_order(user=funded_alice, market=btc_usdt, spec=buy_limit(client_order_id="same"))
    theirs = place_order(user=bob, market=btc_usdt, spec=buy_limit(client_order_id="same"))

    assert mine.pk != theirs.pk
    assert Order.objects.count() == 2


def test_outbox_message_carries_the_command_and_its_cid(funded_alice, btc_usdt):
    from trading.services.outbox import stream_message

    order = place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())
    entry = OutboxEntry.objects.get()

    message = json.loads(stream_message(entry)["c"])

    assert message["cid"] == entry.pk
    assert message["order_id"] == order.pk


def test_hot_path_query_count(funded_alice, btc_usdt):
    place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())  # warm: prepared

    with CaptureQueriesContext(connection) as captured:
        place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())

    # The test's own transaction turns the durable block into a savepoint; in production
    # those two statements are BEGIN and COMMIT. Each statement is prepared once per
    # connection (exchange.db), so a warm call only EXECUTEs.
    statements = [q["sql"].split("(")[0] for q in captured.captured_queries]
    assert [s for s in statements if s.split()[0] not in ("SAVEPOINT", "RELEASE")] == [
        "EXECUTE markets_freshness",  # the market's updated_at, status, last_price
        "EXECUTE markets_tier_rates",  # the batch's users' fee tiers (markets.fees), once
        "EXECUTE trading_accept_insert_orders",  # the order and its outbox row, one statement
        "EXECUTE accounts_hold_funds_many",  # guarded UPDATE + entry + 2 postings, one statement
    ]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_its_statements_again(funded_alice, btc_usdt, redis_db):
    first = place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())
    connection.close()  # the server session, and the statements prepared in it, are gone

    second = place_order(user=funded_alice, market=btc_usdt, spec=buy_limit())

    assert list(Order.objects.order_by("pk").values_list("pk", flat=True)) == [first.pk, second.pk]
    assert OutboxEntry.objects.count() == 2


# --- the service's own amount gate: a spec built by hand gets parse_order_spec's answer

STOP_LIMIT_BUY = OrderSpec(
    side="buy",
    order_type="stop_limit",
    price=D("51000"),
    stop_price=D("50500"),
    quantity=D("0.01"),
)
MARKET_BUY_BY_QUOTE = OrderSpec(side="buy", order_type="market", quote_amount=D("100"))
# Each field on a spec that uses it, so a stored repeat compares that field's Decimal.
BASE_SPEC_OF = {
    "price": STOP_LIMIT_BUY,
    "stop_price": STOP_LIMIT_BUY,
    "quantity": STOP_LIMIT_BUY,
    "quote_amount": MARKET_BUY_BY_QUOTE,
}
BAD_AMOUNTS = [
    ("signalling NaN", D("sNaN"), "amount_invalid"),
    ("negative signalling NaN", D("-sNaN"), "amount_invalid"),
    ("quiet NaN", D("NaN"), "amount_invalid"),
    ("Infinity", D("Infinity"), "amount_invalid"),
    ("-Infinity", D("-Infinity"), "amount_invalid"),
    ("exponent 1E+3", D("1E+3"), "amount_invalid"),
    ("exponent 5.1E+4", D("5.1E+4"), "amount_invalid"),
    ("negative zero", D("-0"), "amount_not_positive"),
    ("negative", D("-51000"), "amount_not_positive"),
    ("41 digits", D("1." + "0" * 40), "amount_too_long"),
]


@pytest.mark.parametrize("repeat", [False, True], ids=["first attempt", "repeated client id"])
@pytest.mark.parametrize("field", ["price", "stop_price", "quantity", "quote_amount"])
@pytest.mark.parametrize(("_case", "bad", "code"), BAD_AMOUNTS)
def test_amount_parse_order_spec_refuses_is_refused_by_the_service(
    funded_alice, btc_usdt, _case, bad, code, field, repeat
):
    base = dataclasses.replace(BASE_SPEC_OF[field], client_order_id="bot-7")
    if repeat:
        place_order(user=funded_alice, market=btc_usdt, spec=base)
    before = snapshot()

    with pytest.raises(InvalidAmount) as caught:
        place_order(
            user=funded_alice, market=btc_usdt, spec=dataclasses.replace(base, **{field: bad})
        )

    assert (caught.value.code, caught.value.field) == (code, field)
    with pytest.raises(InvalidAmount) as parsed:  # the same answer as the API's parser
        parse_order_spec({"side": "buy", field: str(bad)})
    assert (parsed.value.code, parsed.value.field) == (code, field)
    assert snapshot() == before


def test_plain_amounts_with_trailing_zeros_or_many_places_are_not_refused(funded_alice, btc_usdt):
    # Decimal("0.00010") prints as 0.00010 and Decimal("1E-4")'s twin 0.0001 as 0.0001:
    # canonical means what parse_order_spec returns for a plain string, not normalize().
    spec = OrderSpec(side="buy", price=D("50000.00"), quantity=D("0.00010"))

    order = place_order(user=funded_alice, market=btc_usdt, spec=spec)

    assert (order.price, order.quantity) == (D("50000"), D("0.0001"))


def _gate_outcome(check: Callable[[], object]) -> tuple[str, str | None] | None:
    try:
        check()
    except InvalidAmount as exc:
        return exc.code, exc.field
    return None


def _parse_amount_outcome(value: Decimal) -> tuple[str, str | None] | None:
    try:
        parsed = parse_amount(value, decimals=LEDGER_DECIMALS, field="price")
    except InvalidAmount as exc:
        return exc.code, exc.field
    return None if parsed.as_tuple() == value.as_tuple() else ("amount_invalid", "price")


@pytest.mark.parametrize(
    ("_case", "value"),
    [
        ("finest unit", D("1E-18")),
        ("below the finest unit", D("1E-19")),
        ("trailing zeros past 18 places", D("1." + "0" * 20)),
        ("zero", D("0")),
        ("zero with places", D("0.000")),
        ("largest integer", D("9" * 18)),
        ("10^18", D("1" + "0" * 18)),
        ("positive exponent", D("1E+17")),
        ("40 digits", D("1." + "0" * 39)),
    ],
)
def test_amount_gate_edges_agree_with_parse_amount(_case, value):
    outcome = _gate_outcome(lambda: check_spec_amounts(OrderSpec(side="buy", price=value)))

    assert outcome == _parse_amount_outcome(value)


@given(st.decimals(allow_nan=True, allow_infinity=True) | st.decimals(places=20))
@hypothesis_settings(max_examples=500, deadline=None)
def test_amount_gate_shortcut_agrees_with_parse_amount(value):
    outcome = _gate_outcome(lambda: check_spec_amounts(OrderSpec(side="buy", price=value)))

    assert outcome == _parse_amount_outcome(value)
