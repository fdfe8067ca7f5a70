"""reporting.statistics on synthetic series whose truth is known (no database).

Tolerances are derived from the sample sizes: a transition probability estimated from n
visits of its context has standard error sqrt(p(1-p)/n) <= 0.5/sqrt(n); a Monte Carlo
probability from N paths has sqrt(p(1-p)/N). Four standard errors: a false failure is a
1-in-15,000 event, and the seeds are fixed anyway.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reporting.statistics import (
    backtest,
    fit_chain,
    pattern_path,
    pattern_stats,
    select_order,
    sequence_probability,
    simulate,
    to_units,
    vol_unit,
    wilson_interval,
)

TRUE_P = {-1: [0.7, 0.2, 0.1], 0: [0.1, 0.8, 0.1], 1: [0.1, 0.3, 0.6]}  # rows: from move
SYMBOLS = (-1, 0, 1)


def order_one_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    moves = [0]
    for _ in range(n - 1):
        moves.append(SYMBOLS[int(rng.choice(3, p=TRUE_P[moves[-1]]))])
    return np.array(moves)


def test_order_one_chain_is_recovered_within_its_standard_error() -> None:
    moves = order_one_series(6000, seed=3)
    chain = fit_chain(moves, 1)
    assert chain.alphabet == SYMBOLS
    for i, move in enumerate(SYMBOLS):
        visits = chain.counts[i].sum()
        tolerance = 4 * 0.5 / math.sqrt(visits)
        assert np.allclose(chain.probs[i], TRUE_P[move], atol=tolerance), (move, visits)


def test_bic_picks_order_one_for_an_order_one_series() -> None:
    best, bics = select_order(order_one_series(6000, seed=4))
    assert best.order == 1
    assert bics[1] < bics[0]
    assert bics[1] < bics[2] < bics[3]


def test_bic_picks_order_zero_for_a_random_walk() -> None:
    moves = np.random.default_rng(5).choice([-1, 1], size=3000)
    assert select_order(moves)[0].order == 0


def test_random_walk_pattern_continuation_is_p_to_the_n() -> None:
    moves = np.random.default_rng(6).choice([-1, 1], size=4000)
    chain = fit_chain(moves, 0)
    p_up, p_down = chain.next_probabilities([])[1], chain.next_probabilities([])[-1]
    assert abs(p_up - 0.5) < 4 * 0.5 / math.sqrt(4000)
    steps, paths = 6, 40_000
    path = pattern_path(moves, (1, -1), steps)
    analytic = p_up ** path.count(1) * p_down ** path.count(-1)  # ~ 0.5 ** 6
    assert sequence_probability(chain, moves, path) == pytest.approx(analytic, rel=1e-12)
    sim = simulate(chain, moves, steps, paths, np.random.default_rng(7))
    error = math.sqrt(analytic * (1 - analytic) / paths)
    assert abs(sim.sequence_probability(path) - analytic) < 4 * error
    assert abs(analytic - 0.5**steps) < 0.004  # the fitted p is within 0.03 of 1/2


def test_random_walk_bands_cover_nominally_and_the_chain_is_no_better() -> None:
    moves = np.random.default_rng(8).integers(-2, 3, size=2000)
    best = select_order(moves)[0]
    cal = backtest(moves, best.order, 3, paths=400, origins=200, seed=8)
    # 200 non-overlapping origins: coverage standard errors 0.035 (50%) and 0.021 (90%).
    assert abs(cal.coverage_50[0] - 0.5) < 0.14
    assert abs(cal.coverage_90[0] - 0.9) < 0.085
    assert sum(cal.pit_histogram) == cal.origins == 200
    assert not cal.beats_baseline
    assert cal.verdict.startswith("The chain is no better than the random-walk baseline")


def test_the_repeating_pattern_is_found_and_its_calibration_says_so() -> None:
    moves = np.array([-5, 1] * 1000)
    best, _bics = select_order(moves)
    assert best.order == 1
    assert best.next_probabilities([-5])[1] > 0.999
    assert best.next_probabilities([1])[-5] > 0.999
    path = pattern_path(moves, (-5, 1), 30)
    assert path[:3] == [-5, 1, -5]
    exact = sequence_probability(best, moves, path)
    assert exact > 0.98
    sim = simulate(best, moves, 30, 2000, np.random.default_rng(1))
    assert abs(sim.sequence_probability(path) - exact) < 4 * math.sqrt(exact * (1 - exact) / 2000)
    cal = backtest(moves, best.order, 30, paths=200, seed=1)
    assert cal.coverage_50[0] == cal.coverage_90[0] == 1.0
    assert cal.crps[0] < 0.1 * cal.crps[1]
    assert cal.beats_baseline
    assert cal.verdict.startswith("The chain beats the random-walk baseline")
    stats = pattern_stats(moves, (-5, 1))
    assert (stats.runs, stats.repetitions, stats.longest_run) == (1, 1000, 1000)
    assert stats.continuation == 1.0
    assert stats.trailing_repetitions == 1000


def test_pattern_runs_and_continuation_are_counted_by_hand() -> None:
    moves = [0, -5, 1, -5, 1, 0, -5, 1, 2, -5]
    stats = pattern_stats(moves, (-5, 1))
    assert (stats.runs, stats.repetitions, stats.longest_run) == (2, 3, 2)
    assert {k: v[0] for k, v in stats.run_lengths.items()} == {1: 1, 2: 1}
    assert stats.continuation == pytest.approx(1 / 3)  # 3 repetitions, one followed by another
    assert stats.start_share == pytest.approx(3 / 9)
    assert stats.trailing_repetitions == 0
    assert pattern_stats([3, 3, 3], (-5, 1)).runs == 0


def test_pattern_path_is_in_phase_with_the_history() -> None:
    assert pattern_path([0, -5, 1, -5], (-5, 1), 3) == [1, -5, 1]
    assert pattern_path([0, -5, 1], (-5, 1), 3) == [-5, 1, -5]
    assert pattern_path([2, 2], (-5, 1), 2) == [-5, 1]


def test_a_pattern_symbol_the_history_never_shows_gets_only_smoothing_mass() -> None:
    moves = np.random.default_rng(9).choice([-1, 1], size=500)
    best = select_order(moves, alphabet=(-5, 1))[0]
    assert -5 in best.alphabet
    assert 0 < best.next_probabilities(moves)[-5] < 0.01
    plain = fit_chain(moves, 0)
    assert sequence_probability(plain, moves, [-5, 1]) == 0.0


def test_wilson_interval_matches_the_formula() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_units_fixed_and_volatility() -> None:
    closes = [100.0, 95.0, 96.0, 91.0, 92.0, 200.0]
    assert list(to_units(closes, 5.0, max_units=10)) == [-1, 0, -1, 0, 10]
    assert vol_unit(closes) == 5.0  # median of 5, 1, 5, 1, 108
    assert list(to_units(closes, 1.0, max_units=3)) == [-3, 1, -3, 1, 3]
    assert vol_unit([1.0, 1.0, 1.0]) == 0.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        to_units([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="order"):
        fit_chain([1, 2, 3], 4)
    with pytest.raises(ValueError, match="Too few"):
        fit_chain([1, 2], 2)
    with pytest.raises(ValueError, match="backtest"):
        backtest([1, -1] * 20, 1, 30)
    with pytest.raises(ValueError, match="empty"):
        pattern_stats([1, 2], ())
