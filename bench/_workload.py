"""The matching benchmark workload of shared/WORKLOAD.md, rebuilt from its description.

Ops are tuples, all engines get the same ones:

* ``(LIMIT_OP, order_id, account_id, is_buy, price_ticks, qty_lots)``
* ``(CANCEL_OP, order_id, account_id)``
* ``(MARKET_OP, order_id, account_id, is_buy, qty_lots)``

Liveness (which ids a cancel may pick) comes from a small reference price-time matcher used
as an oracle; its fills give the checksums that every engine is compared with.
"""

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

LIMIT_OP = 0
CANCEL_OP = 1
MARKET_OP = 2
START_MID = 1_000_000
ACCOUNTS = 64  # ids spread over accounts so cancels carry a realistic owner check

STANDARD_CHECKSUMS = {
    "limit": 699_816,
    "cancel": 250_019,
    "market": 50_165,
    "fills": 494_811,
    "resting": 692,
    "bid_volume": 17_123,
    "ask_volume": 18_558,
    "bid_levels": 58,
    "ask_levels": 46,
}
# N resting -> (fills, resting at end) of the timed 100,000 ops.
DEEP_CHECKSUMS = {
    100_000: (74_292, 75_123),
    1_000_000: (81_379, 968_392),
    5_000_000: (77_823, 4_971_370),
}


def account_of(order_id: int) -> int:
    """The account that owns ``order_id`` in the workload."""
    return order_id % ACCOUNTS + 1


class _Oracle:
    """Price-time matcher: dict price -> deque of [qty, id], heaps of prices, lazy cancel."""

    def __init__(self) -> None:
        self.levels: tuple[dict[int, deque[list[int]]], dict[int, deque[list[int]]]] = ({}, {})
        self.heaps: tuple[list[int], list[int]] = ([], [])  # bids as -price, asks as price
        self.volume = [0, 0]  # bid, ask
        self.index: dict[int, tuple[list[int], int]] = {}  # id -> (entry, side)
        self.fills = 0

    def take(self, is_buy: bool, limit: int | None, qty: int, filled: list[int]) -> int:
        side = 1 if is_buy else 0  # the opposite (maker) side
        levels, heap = self.levels[side], self.heaps[side]
        sign = 1 if is_buy else -1
        while qty and heap:
            price = heap[0] * sign
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            queue = levels[price]
            while qty and queue:
                entry = queue[0]
                if not entry[0]:
                    queue.popleft()
                    continue
                fill = min(qty, entry[0])
                entry[0] -= fill
                qty -= fill
                self.volume[side] -= fill
                self.fills += 1
                if not entry[0]:
                    queue.popleft()
                    del self.index[entry[1]]
                    filled.append(entry[1])
            if not any(entry[0] for entry in queue):
                heapq.heappop(heap)
                del levels[price]
        return qty

    def rest(self, order_id: int, is_buy: bool, price: int, qty: int) -> None:
        side = 0 if is_buy else 1
        levels = self.levels[side]
        if price not in levels:
            levels[price] = deque()
            heapq.heappush(self.heaps[side], -price if is_buy else price)
        entry = [qty, order_id]
        levels[price].append(entry)
        self.index[order_id] = (entry, side)
        self.volume[side] += qty

    def cancel(self, order_id: int) -> None:
        entry, side = self.index.pop(order_id)
        self.volume[side] -= entry[0]
        entry[0] = 0


@dataclass
class Workload:
    """Pre-loaded ops, plus the oracle's figures to check every engine against."""

    prefill: list[tuple[int, ...]] = field(default_factory=list)
    ops: list[tuple[int, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def generate(n_ops: int = 1_000_000, deep: int = 0, seed: int = 42) -> Workload:
    """Build the standard workload (``deep=0``) or a deep-book one (see WORKLOAD.md)."""
    rng = random.Random(seed)
    rand, randint, expovariate = rng.random, rng.randint, rng.expovariate
    oracle = _Oracle()
    live: list[int] = []
    slot: dict[int, int] = {}
    work = Workload()
    mid = START_MID
    next_id = 1

    def drop(order_id: int) -> None:
        i = slot.pop(order_id)
        last = live.pop()
        if last != order_id:
            live[i] = last
            slot[last] = i

    for _ in range(deep):
        is_buy = rand() < 0.5
        off = randint(1, 1000)
        price = mid - off if is_buy else mid + off
        qty = randint(1, 100)
        work.prefill.append((LIMIT_OP, next_id, account_of(next_id), is_buy, price, qty))
        oracle.rest(next_id, is_buy, price, qty)
        slot[next_id] = len(live)
        live.append(next_id)
        next_id += 1
    oracle.fills = 0
    counts = {"limit": 0, "cancel": 0, "market": 0}
    ops = work.ops
    for _ in range(n_ops):
        r = rand()
        if r < 0.25:
            mid -= 1
        elif r < 0.5:
            mid += 1
        r = rand()
        if 0.70 <= r < 0.95 and live:
            order_id = live[int(rand() * len(live))]
            drop(order_id)
            oracle.cancel(order_id)
            ops.append((CANCEL_OP, order_id, account_of(order_id)))
            counts["cancel"] += 1
            continue
        filled: list[int] = []
        if r >= 0.95:
            is_buy = rand() < 0.5
            volume = oracle.volume[1 if is_buy else 0]
            if volume > 0:
                qty = min(randint(1, 200), volume)
                ops.append((MARKET_OP, next_id, account_of(next_id), is_buy, qty))
                oracle.take(is_buy, None, qty, filled)
                for order_id in filled:
                    drop(order_id)
                next_id += 1
                counts["market"] += 1
                continue
        is_buy = rand() < 0.5
        off = int(expovariate(0.1)) - 2
        price = mid - off if is_buy else mid + off
        qty = randint(1, 100)
        ops.append((LIMIT_OP, next_id, account_of(next_id), is_buy, price, qty))
        left = oracle.take(is_buy, price, qty, filled)
        for order_id in filled:
            drop(order_id)
        if left:
            oracle.rest(next_id, is_buy, price, left)
            slot[next_id] = len(live)
            live.append(next_id)
        next_id += 1
        counts["limit"] += 1
    counts["fills"] = oracle.fills
    counts["resting"] = len(oracle.index)
    counts["bid_volume"], counts["ask_volume"] = oracle.volume
    counts["bid_levels"] = sum(1 for q in oracle.levels[0].values() if any(e[0] for e in q))
    counts["ask_levels"] = sum(1 for q in oracle.levels[1].values() if any(e[0] for e in q))
    work.counts = counts
    return work


def check_standard(work: Workload) -> list[str]:
    """Differences between the generated workload and WORKLOAD.md's checksums."""
    return [
        f"{name}: got {work.counts.get(name)}, expected {want}"
        for name, want in STANDARD_CHECKSUMS.items()
        if work.counts.get(name) != want
    ]


def check_deep(work: Workload, deep: int) -> list[str]:
    """Differences from the deep-book checksums (fills, resting at end)."""
    want = DEEP_CHECKSUMS.get(deep)
    got = (work.counts["fills"], work.counts["resting"])
    return [] if want is None or want == got else [f"deep {deep}: got {got}, expected {want}"]
