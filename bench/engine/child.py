"""What runs inside each fresh benchmark process; prints one JSON line."""

from __future__ import annotations

import gc
import json
import marshal
import sys
import time
from typing import Any

from bench._workload import check_deep, generate
from bench.engine.adapters import ENGINES


def load_ops(path: str) -> list[tuple[int, tuple[Any, ...]]]:
    with open(path, "rb") as handle:
        ops: list[tuple[int, tuple[Any, ...]]] = marshal.load(handle)  # noqa: S302 - our file
    return ops


def as_calls(ops: list[tuple[int, ...]]) -> list[tuple[int, tuple[Any, ...]]]:
    """(kind, args) pairs: the loop does ``calls[kind](*args)`` for every engine."""
    return [(op[0], op[1:]) for op in ops]


def count_fills(events_lists: list[list[tuple[Any, ...]]]) -> int:
    from trading.engine import Trade

    return sum(1 for events in events_lists for event in events if event[0] is Trade)


def standard(engine: str, ops_path: str) -> dict[str, Any]:
    """Time the dispatch loop over the standard workload for one engine."""
    ops = load_ops(ops_path)
    adapter = ENGINES[engine]()
    calls = adapter.calls()
    start = time.perf_counter()
    for op in ops:  # the one timed loop, the same for every engine
        calls[op[0]](*op[1])
    seconds = time.perf_counter() - start
    fills = adapter.fills()
    if engine == "ours":  # ours returns its events; count them in an untimed second pass
        replay = ENGINES["ours"]()
        again = replay.calls()
        fills = count_fills([again[op[0]](*op[1]) for op in ops])
    bid_volume, ask_volume = adapter.volumes()
    return {
        "ops": len(ops),
        "seconds": seconds,
        "ops_per_s": len(ops) / seconds,
        "fills": fills if adapter.reports_fills else None,
        "bid_volume": bid_volume,
        "ask_volume": ask_volume,
    }


def latency(ops_path: str) -> dict[str, Any]:
    """Per-op wall time of ours, perf_counter_ns around each call (timer cost included)."""
    ops = load_ops(ops_path)
    calls = ENGINES["ours"]().calls()
    clock = time.perf_counter_ns
    samples = [0] * len(ops)
    for i, op in enumerate(ops):
        begin = clock()
        calls[op[0]](*op[1])
        samples[i] = clock() - begin
    empty = [0] * 100_000
    for i in range(len(empty)):
        begin = clock()
        empty[i] = clock() - begin
    samples.sort()
    empty.sort()

    def pick(values: list[int], q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {
        "p50_ns": pick(samples, 0.5),
        "p99_ns": pick(samples, 0.99),
        "p999_ns": pick(samples, 0.999),
        "max_ns": samples[-1],
        "timer_ns": pick(empty, 0.5),
    }


def deep(resting: int, freeze: bool) -> dict[str, Any]:
    """Load ``resting`` orders untimed, then time 100,000 ops of the standard flow."""
    work = generate(100_000, deep=resting)
    problems = check_deep(work, resting)
    adapter = ENGINES["ours"]()
    place = adapter.calls()[0]
    for op in work.prefill:
        place(*op[1:])
    ops = as_calls(work.ops)
    del work.prefill
    engine = adapter.engine  # type: ignore[attr-defined]
    saved = engine.snapshot()  # to count fills in an untimed replay afterwards
    gc.collect()
    if freeze:
        gc.freeze()  # what the matching loop does after loading a snapshot
    pauses: list[int] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            pauses.append(time.perf_counter_ns() - started[0])

    gc.callbacks.append(on_gc)
    calls = adapter.calls()
    start = time.perf_counter()
    for op in ops:
        calls[op[0]](*op[1])
    seconds = time.perf_counter() - start
    gc.callbacks.remove(on_gc)
    # The worst case the timed segment may not hit: a full collection over the whole book.
    begin = time.perf_counter_ns()
    gc.collect()
    full_gc_ms = (time.perf_counter_ns() - begin) / 1e6
    bid_volume, ask_volume = adapter.volumes()
    resting_end = len(engine._orders)
    del adapter, engine, calls
    gc.unfreeze()
    replay = type(ENGINES["ours"]().engine).restore(saved)  # type: ignore[attr-defined]
    fills = sum(
        count_fills([call])
        for call in (
            (replay.place, replay.cancel, replay.place_market)[op[0]](*op[1]) for op in ops
        )
    )
    return {
        "resting_start": resting,
        "us_per_op": seconds / len(ops) * 1e6,
        "fills": fills,
        "resting_end": resting_end,
        "want": [work.counts["fills"], work.counts["resting"]],
        "volumes_ok": (bid_volume, ask_volume)
        == (work.counts["bid_volume"], work.counts["ask_volume"]),
        "gc_collections": len(pauses),
        "gc_max_ms": max(pauses, default=0) / 1e6,
        "full_gc_ms": full_gc_ms,
        "freeze": freeze,
        "problems": problems,
    }


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "standard":
        result = standard(argv[1], argv[2])
    elif kind == "latency":
        result = latency(argv[1])
    else:
        result = deep(int(argv[1]), argv[2] == "freeze")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
