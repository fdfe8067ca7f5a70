"""Builders and event filters shared by the engine tests."""

from trading.engine import (
    CancelAll,
    CancelOrder,
    Engine,
    Event,
    Expired,
    LevelChanged,
    OrderType,
    PlaceOrder,
    ReduceOrder,
    Rejected,
    Side,
    StpMode,
    TimeInForce,
    Trade,
)

BUY = Side.BUY
SELL = Side.SELL
GTC = TimeInForce.GTC
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
ALICE = 1
BOB = 2
MALLORY = 3


def limit(
    order_id: int,
    side: Side,
    price_ticks: int,
    qty_lots: int,
    account_id: int = ALICE,
    tif: TimeInForce = GTC,
    stp_mode: StpMode = StpMode.NONE,
    stp_group: int = 0,
) -> PlaceOrder:
    return PlaceOrder(
        order_id,
        account_id,
        side,
        OrderType.LIMIT,
        tif,
        price_ticks=price_ticks,
        qty_lots=qty_lots,
        stp_mode=stp_mode,
        stp_group=stp_group,
    )


def maker_only(order_id: int, side: Side, price_ticks: int, qty_lots: int) -> PlaceOrder:
    return PlaceOrder(
        order_id,
        ALICE,
        side,
        OrderType.LIMIT_MAKER,
        GTC,
        price_ticks=price_ticks,
        qty_lots=qty_lots,
    )


def market(
    order_id: int,
    side: Side,
    qty_lots: int = 0,
    account_id: int = BOB,
    quote_budget: int = 0,
    tif: TimeInForce = IOC,
    stp_mode: StpMode = StpMode.NONE,
) -> PlaceOrder:
    return PlaceOrder(
        order_id,
        account_id,
        side,
        OrderType.MARKET,
        tif,
        qty_lots=qty_lots,
        quote_budget=quote_budget,
        stp_mode=stp_mode,
    )


def stop_limit(
    order_id: int,
    side: Side,
    stop_ticks: int,
    price_ticks: int,
    qty_lots: int,
    account_id: int = BOB,
    tif: TimeInForce = GTC,
) -> PlaceOrder:
    return PlaceOrder(
        order_id,
        account_id,
        side,
        OrderType.STOP_LIMIT,
        tif,
        price_ticks=price_ticks,
        qty_lots=qty_lots,
        stop_ticks=stop_ticks,
    )


def stop_market(
    order_id: int,
    side: Side,
    stop_ticks: int,
    qty_lots: int = 0,
    account_id: int = BOB,
    quote_budget: int = 0,
) -> PlaceOrder:
    return PlaceOrder(
        order_id,
        account_id,
        side,
        OrderType.STOP_MARKET,
        IOC,
        qty_lots=qty_lots,
        quote_budget=quote_budget,
        stop_ticks=stop_ticks,
    )


def cancel(order_id: int, account_id: int = ALICE) -> CancelOrder:
    return CancelOrder(order_id, account_id)


def reduce(order_id: int, new_qty_lots: int, account_id: int = ALICE) -> ReduceOrder:
    return ReduceOrder(order_id, account_id, new_qty_lots)


def cancel_all(account_id: int) -> CancelAll:
    return CancelAll(account_id)


def engine_with(*commands: PlaceOrder) -> Engine:
    engine = Engine()
    for command in commands:
        engine.apply(command)
    return engine


def trades(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(maker id, taker id, price, lots) of each trade."""
    return [
        (e.maker_order_id, e.taker_order_id, e.price_ticks, e.qty_lots)
        for e in events
        if isinstance(e, Trade)
    ]


def expiries(events: list[Event]) -> list[tuple[int, int, str]]:
    return [(e.order_id, e.remaining_lots, e.reason) for e in events if isinstance(e, Expired)]


def levels(events: list[Event]) -> list[tuple[str, int, int]]:
    return [
        (str(e.side), e.price_ticks, e.total_lots) for e in events if isinstance(e, LevelChanged)
    ]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def rejection(events: list[Event]) -> str:
    """The reason of a single-rejection result (fails loudly otherwise)."""
    assert len(events) == 1, events
    assert isinstance(events[0], Rejected), events
    return events[0].reason
