"""Which stored snapshot a new matching-loop owner restores from.

A deposed loop that has not yet noticed it lost its lease can still store a snapshot after
its successor's. Restore must prefer the successor's (higher fence token) state anyway.
"""

from __future__ import annotations

import pytest

from markets.models import Market
from trading.engine.matching import Engine
from trading.models import EngineSnapshot
from trading.recovery import (
    SNAPSHOTS_KEPT,
    LoopState,
    freeze_state,
    load_latest_state,
    oldest_kept_offset,
    save_snapshot,
)


def _state(resting: int, offset: str) -> LoopState:
    engine = Engine()
    for order_id in range(1, resting + 1):
        engine.place(order_id, 7, True, 100, 1)
    return LoopState(engine=engine, input_offset=offset)


@pytest.mark.django_db
def test_a_deposed_owners_later_snapshot_does_not_win(btc_usdt: Market) -> None:
    save_snapshot(market_id=btc_usdt.pk, frozen=freeze_state(_state(3, "30-0")), fence_token=6)
    # stored later (higher pk) by the owner deposed at token 5, from an older state
    save_snapshot(market_id=btc_usdt.pk, frozen=freeze_state(_state(1, "10-0")), fence_token=5)

    state = load_latest_state(market_id=btc_usdt.pk)

    assert state is not None
    assert state.input_offset == "30-0"
    assert len(list(state.engine.open_orders())) == 3


@pytest.mark.django_db
def test_pruning_keeps_the_live_owners_snapshots(btc_usdt: Market) -> None:
    for n in range(SNAPSHOTS_KEPT):
        save_snapshot(
            market_id=btc_usdt.pk, frozen=freeze_state(_state(2, f"{50 + n}-0")), fence_token=6
        )
    save_snapshot(market_id=btc_usdt.pk, frozen=freeze_state(_state(1, "10-0")), fence_token=5)

    kept = set(EngineSnapshot.objects.values_list("fence_token", flat=True))

    assert kept == {6}
    assert oldest_kept_offset(market_id=btc_usdt.pk) == "50-0"
