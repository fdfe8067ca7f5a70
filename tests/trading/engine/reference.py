"""A tiny, obviously correct reference engine for the differential tests.

No cleverness: the book is one list of order dicts, sorted into priority order whenever it
is read; stops are a list scanned in full. It emits the engine's event dataclasses with
``seq=0`` and without LevelChanged (levels are checked against ``levels()`` instead).
Validation of a PlaceOrder's fields reuses the engine's pure ``check_place`` (it has its own
unit tests); everything that depends on state is re-implemented here.
"""

from trading.engine import (
    Accepted,
    Cancelled,
    Expired,
    OrderType,
    PlaceOrder,
    Reduced,
    Rejected,
    Side,
    StopTriggered,
    StpMode,
    TimeInForce,
    Trade,
)
from trading.engine.commands import CancelAll, CancelOrder, ReduceOrder
from trading.engine.validation import check_place

MARKETS = (OrderType.MARKET, OrderType.STOP_MARKET)
STOPS = (OrderType.STOP_LIMIT, OrderType.STOP_MARKET)


def _is_id(value):
    return type(value) is int and 0 < value < 1 << 63


class ReferenceEngine:
    def __init__(self):
        self.book = []  # dicts: id, account, group, side, price, rem, time
        self.stops = []  # dicts: the order fields plus "accepted"
        self.clock = 0
        self.last_price = 0
        self.events = []

    # -- reading -------------------------------------------------------------
    def side_orders(self, side):
        orders = [o for o in self.book if o["side"] is side]
        if side is Side.BUY:
            return sorted(orders, key=lambda o: (-o["price"], o["time"]))
        return sorted(orders, key=lambda o: (o["price"], o["time"]))

    def open_orders(self):
        return [
            (o["id"], o["account"], o["side"], o["price"], o["rem"])
            for side in (Side.BUY, Side.SELL)
            for o in self.side_orders(side)
        ]

    def levels(self):
        out = {}
        for o in self.book:
            key = (o["side"], o["price"])
            out[key] = out.get(key, 0) + o["rem"]
        return out

    def pending_stops(self):
        return [
            (s["id"], s["account"], s["side"] is Side.BUY, s["stop"], s["qty"])
            for s in sorted(self.stops, key=lambda s: s["accepted"])
        ]

    # -- commands ------------------------------------------------------------
    def apply(self, command):
        self.events = []
        if type(command) is PlaceOrder:
            self.place(command)
        elif type(command) is CancelOrder:
            self.cancel(command.order_id, command.account_id)
        elif type(command) is ReduceOrder:
            self.reduce(command)
        elif type(command) is CancelAll:
            self.cancel_all(command.account_id)
        else:
            self.reject(0, 0, "bad_command")
        return self.events

    def reject(self, order_id, account_id, reason):
        order_id = order_id if type(order_id) is int else 0
        account_id = account_id if type(account_id) is int else 0
        self.events.append(Rejected(0, order_id, account_id, reason))

    def live_ids(self):
        return {o["id"] for o in self.book} | {s["id"] for s in self.stops}

    def place(self, command):
        spec = check_place(command)
        if isinstance(spec, str):
            self.reject(command.order_id, command.account_id, spec)
            return
        if spec.order_id in self.live_ids():
            self.reject(spec.order_id, spec.account_id, "duplicate_order_id")
            return
        order = {
            "id": spec.order_id,
            "account": spec.account_id,
            "side": spec.side,
            "type": spec.order_type,
            "tif": spec.tif,
            "price": spec.price_ticks,
            "qty": spec.qty_lots,
            "budget": spec.quote_budget,
            "stop": spec.stop_ticks,
            "stp": spec.stp_mode,
            "group": spec.stp_group,
        }
        if spec.order_type is OrderType.LIMIT_MAKER:
            opposite = self.side_orders(Side.SELL if spec.side is Side.BUY else Side.BUY)
            if opposite and self.crosses(order, opposite[0]):
                self.reject(spec.order_id, spec.account_id, "would_take")
                return
        self.events.append(Accepted(0, *spec[:8], spec.stop_ticks))
        if spec.order_type in STOPS:
            self.clock += 1
            order["accepted"] = self.clock
            self.stops.append(order)
            last = self.last_price
            if last and (
                last >= order["stop"] if order["side"] is Side.BUY else last <= order["stop"]
            ):
                self.run_stops([last])
            return
        prices = self.execute(order)
        self.run_stops(prices)

    def crosses(self, order, maker):
        if order["type"] in MARKETS:
            return True
        if order["side"] is Side.BUY:
            return maker["price"] <= order["price"]
        return maker["price"] >= order["price"]

    def is_self_trade(self, order, maker):
        return maker["account"] == order["account"] or (
            order["group"] != 0 and maker["group"] == order["group"]
        )

    def fok_fillable(self, order, opposite):
        need = order["qty"]
        for maker in opposite:
            if not self.crosses(order, maker):
                break
            if order["stp"] is not StpMode.NONE and self.is_self_trade(order, maker):
                if order["stp"] is StpMode.EXPIRE_MAKER:
                    continue
                break
            need -= maker["rem"]
            if need <= 0:
                return True
        return need <= 0

    def execute(self, order):
        """Match, then rest or expire; returns the list of trade prices."""
        side = order["side"]
        opposite = self.side_orders(Side.SELL if side is Side.BUY else Side.BUY)
        qty, budget, prices = order["qty"], order["budget"], []
        if order["tif"] is TimeInForce.FOK and not self.fok_fillable(order, opposite):
            self.events.append(Expired(0, order["id"], order["account"], qty, 0, "fok"))
            return prices
        self_trade = False
        for maker in opposite:
            if not (qty or budget) or not self.crosses(order, maker):
                break
            if order["stp"] is not StpMode.NONE and self.is_self_trade(order, maker):
                if order["stp"] in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH):
                    self.book.remove(maker)
                    self.events.append(
                        Expired(0, maker["id"], maker["account"], maker["rem"], 0, "stp")
                    )
                if order["stp"] in (StpMode.EXPIRE_TAKER, StpMode.EXPIRE_BOTH):
                    self_trade = True
                    break
                continue
            fill = min(maker["rem"], budget // maker["price"] if budget else qty)
            if fill == 0:
                break
            if budget:
                budget -= fill * maker["price"]
            else:
                qty -= fill
            maker["rem"] -= fill
            if maker["rem"] == 0:
                self.book.remove(maker)
            self.events.append(
                Trade(
                    0,
                    maker["id"],
                    order["id"],
                    maker["account"],
                    order["account"],
                    maker["price"],
                    fill,
                    side,
                    maker["rem"] == 0,
                    not (qty or budget),
                )
            )
            prices.append(maker["price"])
            self.last_price = maker["price"]
            if maker["rem"]:  # a maker left over means the taker can take no more
                break
        if qty or budget:
            if self_trade:
                reason = "stp"
            elif order["type"] in MARKETS:
                reason = "market"
            elif order["tif"] is not TimeInForce.GTC:
                reason = str(order["tif"])
            else:
                self.clock += 1
                self.book.append(
                    {
                        "id": order["id"],
                        "account": order["account"],
                        "group": order["group"],
                        "side": side,
                        "price": order["price"],
                        "rem": qty,
                        "time": self.clock,
                    }
                )
                return prices
            self.events.append(Expired(0, order["id"], order["account"], qty, budget, reason))
        return prices

    def run_stops(self, prices):
        queue = self.take_triggered(prices)
        while queue:
            trigger, stop = queue.pop(0)
            self.events.append(StopTriggered(0, stop["id"], stop["account"], stop["stop"], trigger))
            queue += self.take_triggered(self.execute(stop))

    def take_triggered(self, prices):
        if not prices:
            return []
        low, high = min(prices), max(prices)
        fired = []
        for stop in sorted(self.stops, key=lambda s: s["accepted"]):
            if stop["side"] is Side.BUY and high >= stop["stop"]:
                fired.append((high, stop))
            elif stop["side"] is Side.SELL and low <= stop["stop"]:
                fired.append((low, stop))
        for _, stop in fired:
            self.stops.remove(stop)
        return fired

    def find(self, order_id, account_id):
        """(order or stop or None, rejection reason or '')."""
        if not _is_id(order_id):
            return None, "bad_order_id"
        if not _is_id(account_id):
            return None, "bad_account_id"
        for item in self.book + self.stops:
            if item["id"] == order_id:
                if item["account"] != account_id:
                    return None, "wrong_account"
                return item, ""
        return None, "unknown_order"

    def cancel(self, order_id, account_id):
        item, reason = self.find(order_id, account_id)
        if item is None:
            self.reject(order_id, account_id, reason)
        elif item in self.book:
            self.book.remove(item)
            self.events.append(Cancelled(0, order_id, account_id, item["rem"], 0))
        else:
            self.stops.remove(item)
            self.events.append(Cancelled(0, order_id, account_id, item["qty"], item["budget"]))

    def reduce(self, command):
        item, reason = self.find(command.order_id, command.account_id)
        new = command.new_qty_lots
        if item is None:
            self.reject(command.order_id, command.account_id, reason)
            return
        field = "rem" if item in self.book else "qty"
        if not _is_id(new):
            reason = "bad_qty"
        elif item[field] == 0:
            reason = "not_reducible"
        elif new >= item[field]:
            reason = "qty_unchanged" if new == item[field] else "qty_increase"
        if reason:
            self.reject(command.order_id, command.account_id, reason)
            return
        self.events.append(Reduced(0, item["id"], item["account"], new, item[field] - new))
        item[field] = new

    def cancel_all(self, account_id):
        if not _is_id(account_id):
            self.reject(0, account_id, "bad_account_id")
            return
        ids = sorted(item["id"] for item in self.book + self.stops if item["account"] == account_id)
        if not ids:
            self.reject(0, account_id, "unknown_account")
        for order_id in ids:
            self.cancel(order_id, account_id)
