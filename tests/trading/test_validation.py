"""Pure order validation: parsing raw input and checking it against market rules (no DB)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.errors import InvalidAmount
from accounts.models import Asset
from markets.models import Market, MarketStatus
from trading.errors import InvalidOrder, MarketNotTrading
from trading.validation import OrderSpec, check_order_spec, parse_order_spec

D = Decimal


def btc_usdt(**rules: object) -> Market:
    """An unsaved BTC-USDT market: tick 0.01, lot 0.00001, min 0.0001, value >= 5."""
    fields: dict[str, object] = {
        "symbol": "BTC-USDT",
        "base": Asset(code="BTC", name="Bitcoin", decimals=8),
        "quote": Asset(code="USDT", name="Tether", decimals=6),
        "tick_size": D("0.01"),
        "lot_size": D("0.00001"),
        "min_quantity": D("0.0001"),
        "max_quantity": D("100"),
        "min_notional": D("5"),
        "maker_fee": D("0.001"),
        "taker_fee": D("0.002"),
        "price_band_pct": D("10"),
        "status": MarketStatus.TRADING,
        "last_price": D("50000"),
    }
    fields.update(rules)
    return Market(**fields)


def limit(
    side: str = "buy", price: str = "50000", quantity: str = "0.001", **kw: object
) -> OrderSpec:
    kw.setdefault("order_type", "limit")
    return OrderSpec(side=side, price=D(price), quantity=D(quantity), **kw)  # type: ignore[arg-type]


def test_parse_turns_strings_into_a_spec():
    spec = parse_order_spec(
        {
            "side": "BUY",
            "order_type": "limit",
            "price": "50000.10",
            "quantity": "0.5",
            "client_order_id": "bot-1:a/b_c.d",
        }
    )

    assert spec == OrderSpec(
        side="buy",
        order_type="limit",
        price=D("50000.10"),
        quantity=D("0.5"),
        client_order_id="bot-1:a/b_c.d",
    )
    assert spec.resolved_time_in_force == "gtc"


def test_parse_defaults_market_orders_to_ioc():
    spec = parse_order_spec({"side": "sell", "type": "market", "quantity": "1"})

    assert spec.order_type == "market"
    assert spec.resolved_time_in_force == "ioc"


@pytest.mark.parametrize(
    ("_case", "data", "field", "code"),
    [
        ("missing side", {"quantity": "1"}, "side", "side_invalid"),
        ("unknown side", {"side": "hold"}, "side", "side_invalid"),
        ("side not a string", {"side": 1}, "side", "side_invalid"),
        (
            "unknown type",
            {"side": "buy", "order_type": "iceberg"},
            "order_type",
            "order_type_invalid",
        ),
        (
            "unknown tif",
            {"side": "buy", "time_in_force": "gtd"},
            "time_in_force",
            "time_in_force_invalid",
        ),
        ("unknown stp", {"side": "buy", "stp_mode": "cancel"}, "stp_mode", "stp_mode_invalid"),
        (
            "coid too long",
            {"side": "buy", "client_order_id": "x" * 37},
            "client_order_id",
            "client_order_id_invalid",
        ),
        (
            "coid bad chars",
            {"side": "buy", "client_order_id": "a b"},
            "client_order_id",
            "client_order_id_invalid",
        ),
        (
            "coid not a string",
            {"side": "buy", "client_order_id": 12},
            "client_order_id",
            "client_order_id_invalid",
        ),
    ],
)
def test_parse_refuses_bad_choices(_case, data, field, code):
    with pytest.raises(InvalidOrder) as caught:
        parse_order_spec(data)

    assert (caught.value.field, caught.value.code) == (field, code)


@pytest.mark.parametrize(
    ("_case", "raw", "code"),
    [
        ("zero", "0", "amount_not_positive"),
        ("negative", "-1", "amount_not_positive"),
        ("NaN", "NaN", "amount_invalid"),
        ("Infinity", "Infinity", "amount_invalid"),
        ("exponent", "1e3", "amount_invalid"),
        ("spaces", " 1", "amount_invalid"),
        ("float", 1.5, "amount_invalid"),
        ("19 decimals", "0." + "1" * 19, "amount_too_precise"),
        ("10,000 characters", "1" * 10_000, "amount_too_long"),
        ("too large", "1" * 19, "amount_too_large"),
        ("arabic digits", "١٢", "amount_invalid"),
    ],
)
def test_parse_refuses_bad_amounts(_case, raw, code):
    with pytest.raises(InvalidAmount) as caught:
        parse_order_spec({"side": "buy", "price": raw, "quantity": "1"})

    assert (caught.value.field, caught.value.code) == ("price", code)


def test_limit_buy_holds_price_times_quantity_plus_the_larger_fee_rounded_up():
    # 50000.01 x 0.00013 = 6.5000013; x 1.002 = 6.5130013026 -> up to 6 places.
    plan = check_order_spec(market=btc_usdt(), spec=limit(price="50000.01", quantity="0.00013"))

    assert (plan.hold_asset, plan.hold_amount) == ("quote", D("6.513002"))
    assert (plan.price_ticks, plan.qty_lots, plan.quote_budget) == (5_000_001, 13, 0)
    assert plan.engine_order_type == "limit"


def test_sell_holds_the_base_quantity():
    plan = check_order_spec(market=btc_usdt(), spec=limit(side="sell", quantity="0.12345"))

    assert (plan.hold_asset, plan.hold_amount) == ("base", D("0.12345"))


def test_market_buy_by_quantity_is_an_ioc_limit_at_the_band_top():
    spec = OrderSpec(side="buy", order_type="market", quantity=D("0.001"))

    plan = check_order_spec(market=btc_usdt(), spec=spec)

    # Worst price 55,000: 55 x 1.002 = 55.11.
    assert plan.protect_price == D("55000.00")
    assert (plan.hold_asset, plan.hold_amount) == ("quote", D("55.11"))
    assert (plan.engine_order_type, plan.engine_time_in_force) == ("limit", "ioc")
    assert plan.price_ticks == 5_500_000


def test_market_buy_by_quote_amount_holds_amount_plus_taker_fee():
    spec = OrderSpec(side="buy", order_type="market", quote_amount=D("100.000001"))

    plan = check_order_spec(market=btc_usdt(), spec=spec)

    # 100.000001 x 1.002 = 100.200001002 -> 100.200002; budget in units of 0.01 x 0.00001.
    assert plan.hold_amount == D("100.200002")
    assert plan.quote_budget == 1_000_000_010
    assert (plan.engine_order_type, plan.price_ticks, plan.qty_lots) == ("market", 0, 0)


def test_stop_market_buy_uses_the_higher_of_stop_and_last_price():
    spec = OrderSpec(
        side="buy", order_type="stop_market", quantity=D("0.001"), stop_price=D("52000")
    )

    plan = check_order_spec(market=btc_usdt(), spec=spec)

    assert plan.protect_price == D("57200.00")
    assert plan.hold_amount == D("57.3144")  # 57.2 x 1.002
    assert (plan.engine_order_type, plan.stop_ticks) == ("stop_limit", 5_200_000)


def test_market_sell_needs_no_reference_price():
    spec = OrderSpec(side="sell", order_type="market", quantity=D("0.001"))

    plan = check_order_spec(market=btc_usdt(last_price=None), spec=spec)

    assert (plan.hold_amount, plan.engine_order_type, plan.price_ticks) == (D("0.001"), "market", 0)


@pytest.mark.parametrize(
    ("_case", "market", "spec", "field", "code"),
    [
        ("off tick", btc_usdt(), limit(price="50000.001"), "price", "price_off_tick"),
        ("too precise", btc_usdt(), limit(price="50000.0000001"), "price", "price_too_precise"),
        ("zero price", btc_usdt(), limit(price="0"), "price", "price_invalid"),
        ("negative price", btc_usdt(), limit(price="-50000"), "price", "price_invalid"),
        ("NaN price", btc_usdt(), limit(price="NaN"), "price", "price_invalid"),
        ("infinite price", btc_usdt(), limit(price="Infinity"), "price", "price_invalid"),
        ("1e30 price", btc_usdt(), limit(price="1e30"), "price", "price_invalid"),
        ("above band", btc_usdt(), limit(price="55000.01"), "price", "price_out_of_band"),
        ("below band", btc_usdt(), limit(price="44999.99"), "price", "price_out_of_band"),
        ("below lot", btc_usdt(), limit(quantity="0.000001"), "quantity", "quantity_off_lot"),
        (
            "too precise qty",
            btc_usdt(),
            limit(quantity="0.000000001"),
            "quantity",
            "quantity_too_precise",
        ),
        ("below min", btc_usdt(), limit(quantity="0.00005"), "quantity", "quantity_below_minimum"),
        (
            "above max",
            btc_usdt(),
            limit(quantity="100.00001"),
            "quantity",
            "quantity_above_maximum",
        ),
        (
            "below notional",
            btc_usdt(min_notional=D("100")),
            limit(quantity="0.0019"),
            "quantity",
            "notional_below_minimum",
        ),
        ("no price", btc_usdt(), OrderSpec(side="buy", quantity=D("1")), "price", "price_required"),
        (
            "no quantity",
            btc_usdt(),
            OrderSpec(side="buy", price=D("50000")),
            "quantity",
            "quantity_required",
        ),
        (
            "market with price",
            btc_usdt(),
            OrderSpec(side="buy", order_type="market", price=D("1"), quantity=D("1")),
            "price",
            "price_not_allowed",
        ),
        (
            "market gtc",
            btc_usdt(),
            OrderSpec(side="sell", order_type="market", time_in_force="gtc", quantity=D("1")),
            "time_in_force",
            "time_in_force_invalid",
        ),
        (
            "maker ioc",
            btc_usdt(),
            limit(order_type="limit_maker", time_in_force="ioc"),
            "time_in_force",
            "time_in_force_invalid",
        ),
        (
            "sell by quote",
            btc_usdt(),
            OrderSpec(side="sell", order_type="market", quote_amount=D("10")),
            "quote_amount",
            "quote_amount_not_allowed",
        ),
        (
            "both amounts",
            btc_usdt(),
            OrderSpec(side="buy", order_type="market", quantity=D("1"), quote_amount=D("10")),
            "quantity",
            "quantity_not_allowed",
        ),
        (
            "tiny quote",
            btc_usdt(),
            OrderSpec(side="buy", order_type="market", quote_amount=D("4.99")),
            "quote_amount",
            "quote_amount_too_small",
        ),
        (
            "stop without stop price",
            btc_usdt(),
            OrderSpec(side="buy", order_type="stop_limit", price=D("50000"), quantity=D("1")),
            "stop_price",
            "stop_price_required",
        ),
        (
            "limit with stop price",
            btc_usdt(),
            limit(stop_price=D("50000")),
            "stop_price",
            "stop_price_not_allowed",
        ),
        (
            "no reference",
            btc_usdt(last_price=None),
            OrderSpec(side="buy", order_type="market", quantity=D("0.001")),
            "quantity",
            "market_no_reference_price",
        ),
        (
            "no band",
            btc_usdt(price_band_pct=D("0")),
            OrderSpec(side="buy", order_type="market", quantity=D("0.001")),
            "quantity",
            "market_no_reference_price",
        ),
        ("bad side", btc_usdt(), limit(side="long"), "side", "side_invalid"),
        (
            "bad coid",
            btc_usdt(),
            limit(client_order_id="ä"),
            "client_order_id",
            "client_order_id_invalid",
        ),
    ],
)
def test_rule_violations_have_stable_codes(_case, market, spec, field, code):
    with pytest.raises(InvalidOrder) as caught:
        check_order_spec(market=market, spec=spec)

    assert (caught.value.field, caught.value.code) == (field, code)


def test_band_is_inclusive_and_off_without_a_last_price():
    check_order_spec(market=btc_usdt(), spec=limit(price="55000"))
    check_order_spec(market=btc_usdt(), spec=limit(price="45000"))
    check_order_spec(
        market=btc_usdt(last_price=None), spec=limit(price="900000", quantity="0.0001")
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(MarketStatus.HALTED, "market_halted"), (MarketStatus.CANCEL_ONLY, "market_cancel_only")],
)
def test_only_trading_markets_take_new_orders(status, code):
    with pytest.raises(MarketNotTrading) as caught:
        check_order_spec(market=btc_usdt(status=status), spec=limit())

    assert (caught.value.code, caught.value.status) == (code, 409)


def test_irt_holds_round_up_to_whole_toman():
    market = btc_usdt(
        symbol="USDT-IRT",
        base=Asset(code="USDT", name="Tether", decimals=6),
        quote=Asset(code="IRT", name="Toman", decimals=0),
        tick_size=D("10"),
        lot_size=D("0.01"),
        min_quantity=D("1"),
        min_notional=D("100000"),
        maker_fee=D("0.0025"),
        taker_fee=D("0.0035"),
        price_band_pct=D("5"),
        last_price=D("60000"),
    )

    plan = check_order_spec(market=market, spec=limit(price="60010", quantity="2.33"))

    # 60010 x 2.33 = 139823.3; x 1.0035 = 140312.6816 -> 140313 (never short).
    assert plan.hold_amount == D("140313")
    assert (plan.price_ticks, plan.qty_lots) == (6001, 233)
