"""Random command streams that exercise every order type, TIF, STP mode, cancel and reduce."""

import random

from trading.engine import (
    CancelAll,
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    ReduceOrder,
    Side,
    StpMode,
    TimeInForce,
)

ACCOUNTS = (1, 2, 3, 4)
TYPES = (
    [OrderType.LIMIT] * 16
    + [OrderType.MARKET] * 2
    + [OrderType.LIMIT_MAKER] * 3
    + [OrderType.STOP_LIMIT] * 2
    + [OrderType.STOP_MARKET] * 2
)
TIFS = [TimeInForce.GTC] * 8 + [TimeInForce.IOC] + [TimeInForce.FOK]
STP_MODES = [StpMode.NONE] * 4 + list(StpMode)


def random_stream(seed: int, n: int, mid: int = 100, spread: int = 6) -> list[Command]:
    """``n`` commands around ``mid``; mostly valid, some deliberately bad."""
    rng = random.Random(seed)
    commands: list[Command] = []
    next_id = 1
    placed: list[tuple[int, int]] = []  # (order id, account) of every placed order
    for _ in range(n):
        r = rng.random()
        if r < 0.62 or not placed:
            commands.append(_random_place(rng, next_id, mid, spread))
            placed.append((next_id, commands[-1].account_id))  # type: ignore[union-attr]
            next_id += 1
        elif r < 0.80:
            order_id, account = rng.choice(placed[-80:])
            if rng.random() < 0.1:
                account = rng.choice(ACCOUNTS)  # sometimes someone else's order
            commands.append(CancelOrder(order_id, account))
        elif r < 0.92:
            order_id, account = rng.choice(placed[-80:])
            commands.append(ReduceOrder(order_id, account, rng.randint(0, 12)))
        elif r < 0.95:
            commands.append(CancelAll(rng.choice((*ACCOUNTS, 99))))
        elif r < 0.98:
            # A duplicate of a recent id (live or finished) or a plainly bad value.
            order_id = rng.choice(placed[-20:])[0]
            commands.append(_random_place(rng, order_id, mid, spread))
        else:
            commands.append(
                PlaceOrder(
                    next_id,
                    1,
                    Side.BUY,
                    OrderType.LIMIT,
                    TimeInForce.GTC,
                    price_ticks=rng.choice([0, -1]),
                    qty_lots=rng.choice([0, 1]),
                )
            )
    return commands


def _random_place(rng: random.Random, order_id: int, mid: int, spread: int) -> PlaceOrder:
    order_type = rng.choice(TYPES)
    side = rng.choice((Side.BUY, Side.SELL))
    tif = rng.choice(TIFS)
    price = stop = qty = budget = 0
    if order_type in (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT):
        price = mid + rng.randint(-spread, spread)
        qty = rng.randint(1, 10)
    elif side is Side.BUY and rng.random() < 0.3:
        budget = rng.randint(1, 30) * mid // 10
        tif = TimeInForce.IOC
    else:
        qty = rng.randint(1, 15)
    if order_type is OrderType.LIMIT_MAKER:
        tif = TimeInForce.GTC
    if order_type in (OrderType.STOP_LIMIT, OrderType.STOP_MARKET):
        stop = mid + rng.randint(-spread, spread)
    return PlaceOrder(
        order_id,
        rng.choice(ACCOUNTS),
        side,
        order_type,
        tif,
        price_ticks=price,
        qty_lots=qty,
        quote_budget=budget,
        stop_ticks=stop,
        stp_mode=rng.choice(STP_MODES),
        stp_group=rng.choice((0, 0, 1, 2)),
    )
