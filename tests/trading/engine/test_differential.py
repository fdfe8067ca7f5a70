"""The engine against the reference engine on random streams: events, levels, final book."""

import dataclasses

from tests.trading.engine.conftest import DIFFERENTIAL_SUMMARY
from tests.trading.engine.reference import ReferenceEngine
from tests.trading.engine.streams import random_stream
from trading.engine import Engine, LevelChanged

COMMANDS_PER_SEED = 2000


def run_pair(seed: int, n: int) -> list[str]:
    """Return the divergences (empty when the engines agree on everything)."""
    engine, reference = Engine(), ReferenceEngine()
    mirror: dict[tuple[str, int], int] = {}  # the book rebuilt from LevelChanged alone
    problems: list[str] = []
    for i, command in enumerate(random_stream(seed, n)):
        first_seq = engine.seq + 1
        events = engine.apply(command)
        expected = reference.apply(command)
        if [e.seq for e in events] != list(range(first_seq, first_seq + len(events))):
            problems.append(f"seed {seed} #{i} {command}: sequence gap")
        for event in events:
            if isinstance(event, LevelChanged):
                key = (event.side, event.price_ticks)
                if event.total_lots:
                    mirror[key] = event.total_lots
                else:
                    mirror.pop(key, None)
        got = [dataclasses.replace(e, seq=0) for e in events if not isinstance(e, LevelChanged)]
        if got != expected:
            problems.append(f"seed {seed} #{i} {command}:\n  got {got}\n  want {expected}")
        if mirror != reference.levels():
            problems.append(f"seed {seed} #{i} {command}: levels {mirror} != {reference.levels()}")
        if problems:
            return problems
    if list(engine.open_orders()) != reference.open_orders():
        problems.append(f"seed {seed}: final open orders differ")
    if engine.pending_stops() != reference.pending_stops():
        problems.append(f"seed {seed}: final stops differ")
    if engine.last_price != reference.last_price:
        problems.append(f"seed {seed}: last price differs")
    return problems


def test_engine_matches_reference_on_random_streams(diff_seeds):
    problems: list[str] = []
    for seed in range(diff_seeds):
        problems += run_pair(seed, COMMANDS_PER_SEED)

    DIFFERENTIAL_SUMMARY.append(
        f"differential: {diff_seeds} seeds x {COMMANDS_PER_SEED} commands: "
        f"{len(problems)} divergences"
    )
    assert problems == []
