"""The engine's public methods for the loops: a rejection from outside, a restored position."""

import pytest

from tests.trading.engine.helpers import BUY, SELL, engine_with, limit, stop_limit
from trading.engine import Engine, Rejected, StopTriggered, decode_event


def test_rejection_for_takes_the_next_seq_and_changes_nothing_else() -> None:
    engine = engine_with(limit(1, BUY, 100, 2))
    before = engine.state_hash()
    seq = engine.seq

    raw = engine.rejection_for(order_id=7, account_id=3, reason="market_halted")

    assert decode_event(raw) == Rejected(seq + 1, 7, 3, "market_halted")
    assert engine.seq == seq + 1
    engine.restore_position(seq=seq)
    assert engine.state_hash() == before  # only the seq moved


def test_restore_position_continues_the_sequence_and_arms_stops_against_the_price() -> None:
    engine = Engine()
    engine.restore_position(seq=500, last_price_ticks=120)
    events = engine.apply(stop_limit(9, SELL, stop_ticks=125, price_ticks=110, qty_lots=1))
    # The stop (sell at or below 125) is already crossed by the last price 120: it
    # triggers on arrival, and every event continues after seq 500.
    assert events[0].seq == 501
    assert any(isinstance(e, StopTriggered) for e in events)

    engine.restore_position(seq=42)  # None keeps the last price
    assert engine.apply(limit(10, BUY, 1, 1))[0].seq == 43


@pytest.mark.parametrize(
    "kwargs",
    [{"seq": -1}, {"seq": True}, {"seq": 1.0}, {"seq": 1, "last_price_ticks": -5}],
)
def test_restore_position_refuses_a_bad_position(kwargs: dict[str, object]) -> None:
    engine = Engine()
    with pytest.raises(ValueError, match="must be a non-negative int"):
        engine.restore_position(**kwargs)  # type: ignore[arg-type]
    assert engine.seq == 0
