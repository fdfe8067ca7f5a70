"""One adapter per engine: three callables driven by the same dispatch loop, plus a result.

Every adapter takes the op arguments of bench._workload as they are:
limit(order_id, account_id, is_buy, price_ticks, qty_lots), cancel(order_id, account_id),
market(order_id, account_id, is_buy, qty_lots). Ours needs no wrapper: its fast entry points
have exactly these signatures and return the full event list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MARKET_BUY_PRICE = 10**15  # pyorderbook has no market orders: a limit no ask can exceed

Ops = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]


class Adapter:
    """Callables for the loop, and what the engine says about its final book."""

    reports_fills = True

    def calls(self) -> Ops:
        raise NotImplementedError

    def fills(self) -> int | None:
        return None

    def volumes(self) -> tuple[int, int]:
        raise NotImplementedError


class Ours(Adapter):
    def __init__(self) -> None:
        from trading.engine import Engine

        self.engine = Engine()

    def calls(self) -> Ops:
        engine = self.engine
        return engine.place, engine.cancel, engine.place_market

    def volumes(self) -> tuple[int, int]:
        bids, asks = self.engine.depth(10**9)
        return sum(q for _, q in bids), sum(q for _, q in asks)


class LightMatching(Adapter):
    def __init__(self) -> None:
        from lightmatchingengine.lightmatchingengine import LightMatchingEngine

        self.engine = LightMatchingEngine()
        self.count = [0]

    def calls(self) -> Ops:
        add, cancel_order, count = self.engine.add_order, self.engine.cancel_order, self.count

        # Its trade list holds one aggressor row per level plus one row per maker fill.
        def limit(order_id: int, account_id: int, is_buy: bool, price: int, qty: int) -> None:
            _, trades = add("X", price, qty, 1 if is_buy else 2)
            if trades:
                count[0] += sum(1 for t in trades if t.order_id != order_id)

        def cancel(order_id: int, account_id: int) -> None:
            cancel_order(order_id, "X")  # its ids are 1, 2, 3... in add order, like ours

        def market(order_id: int, account_id: int, is_buy: bool, qty: int) -> None:
            _, trades = add("X", 0, qty, 1 if is_buy else 2)
            count[0] += sum(1 for t in trades if t.order_id != order_id)

        return limit, cancel, market

    def fills(self) -> int:
        return self.count[0]

    def volumes(self) -> tuple[int, int]:
        book = self.engine.order_books["X"]
        return tuple(  # type: ignore[return-value]
            sum(o.leaves_qty for level in side.values() for o in level)
            for side in (book.bids, book.asks)
        )


class PyOrderBook(Adapter):
    def __init__(self) -> None:
        import pyorderbook

        self.module = pyorderbook
        self.book = pyorderbook.Book()
        self.count = [0]

    def calls(self) -> Ops:
        match, cancel_order, order_cls = self.book.match, self.book.cancel, self.module.Order
        bid, ask = self.module.Side.BID, self.module.Side.ASK
        live: dict[int, Any] = {}
        count = self.count

        def limit(order_id: int, account_id: int, is_buy: bool, price: int, qty: int) -> None:
            order = order_cls(bid if is_buy else ask, "X", price, qty)
            live[order_id] = order  # its ids are UUIDs; cancel needs the object
            count[0] += len(match(order).trades)

        def cancel(order_id: int, account_id: int) -> None:
            cancel_order(live.pop(order_id))

        def market(order_id: int, account_id: int, is_buy: bool, qty: int) -> None:
            price = MARKET_BUY_PRICE if is_buy else 0
            count[0] += len(match(order_cls(bid if is_buy else ask, "X", price, qty)).trades)

        return limit, cancel, market

    def fills(self) -> int:
        return self.count[0]

    def volumes(self) -> tuple[int, int]:
        bid = self.module.Side.BID
        orders = self.book.order_map.values()
        return (
            sum(o.quantity for o in orders if o.side == bid),
            sum(o.quantity for o in orders if o.side != bid),
        )


class Liquibook(Adapter):
    """C++ through SWIG. ``listener`` sets a Python OrderListener (on_fill counts fills).

    liquibook's TradeListener is not exposed to Python; the OrderListener is the only way a
    Python service hears about fills, and SWIG calls every one of its callbacks.
    """

    def __init__(self, listener: bool) -> None:
        import liquibook

        self.module = liquibook
        self.book = liquibook.liquibook_book_OrderBook()
        self.listener = _make_listener(liquibook) if listener else None
        self.reports_fills = listener
        if self.listener is not None:
            self.book.set_order_listener(self.listener)

    def calls(self) -> Ops:
        add, cancel_order, order_cls = self.book.add, self.book.cancel, self.module.SimpleOrder
        live: dict[int, Any] = {}

        def limit(order_id: int, account_id: int, is_buy: bool, price: int, qty: int) -> None:
            order = order_cls(is_buy, price, qty)
            live[order_id] = order
            add(order)

        def cancel(order_id: int, account_id: int) -> None:
            cancel_order(live.pop(order_id))

        def market(order_id: int, account_id: int, is_buy: bool, qty: int) -> None:
            add(order_cls(is_buy, 0, qty))  # price 0 is liquibook's market order

        return limit, cancel, market

    def fills(self) -> int | None:
        return None if self.listener is None else self.listener.fills

    def volumes(self) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            sum(tracker.open_qty() for _, tracker in side.items())
            for side in (self.book.bids(), self.book.asks())
        )


def _make_listener(liquibook: Any) -> Any:
    class FillCounter(liquibook.OrderListener):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            liquibook.OrderListener.__init__(self)
            self.fills = 0

        def on_accept(self, order: Any) -> None:
            pass

        def on_reject(self, order: Any, reason: Any) -> None:
            pass

        def on_fill(self, passive: Any, aggressive: Any, qty: int, cost: int) -> None:
            self.fills += 1

        def on_cancel(self, order: Any) -> None:
            pass

        def on_cancel_reject(self, order: Any, reason: Any) -> None:
            pass

        def on_replace(self, order: Any, size_delta: Any, new_price: Any) -> None:
            pass

        def on_replace_reject(self, order: Any, reason: Any) -> None:
            pass

        def on_trigger_stop(self, order: Any) -> None:
            pass

    return FillCounter()


ENGINES: dict[str, Callable[[], Adapter]] = {
    "ours": Ours,
    "lightmatchingengine": LightMatching,
    "pyorderbook": PyOrderBook,
    "liquibook": lambda: Liquibook(listener=False),
    "liquibook+listener": lambda: Liquibook(listener=True),
}
# Which PyPI distribution each peer needs (absent = ours).
DISTRIBUTIONS = {
    "lightmatchingengine": "lightmatchingengine",
    "pyorderbook": "pyorderbook",
    "liquibook": "liquibook",
    "liquibook+listener": "liquibook",
}
