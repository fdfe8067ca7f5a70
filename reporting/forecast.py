"""The price-pattern forecast of one market: read its candle closes, run the statistics.

This is the glue between the market data (markets.selectors.candles, the only reader of
candles) and the pure mathematics in reporting.statistics. It parses and checks every
parameter (each bad one is a DomainError with a stable code and field, raised before any
read), turns Decimal closes into floats for the statistics (a forecast is a statistic, not
money; nothing computed here is ever booked) and turns the displayed prices back into
Decimal quantized to the market's tick. It reads only; it writes nothing.

The history is the market's last `MAX_CANDLES` closed klines at the interval (the open one
is left out: its close is not a close yet; tradeless buckets carry the previous close, so
they are zero moves, as a quiet market is). The horizon is in
steps of the interval (30 at 1d = a month). The calibration uses the same chain order over
the second half of the history, with a horizon of at most a quarter of the history, so a
short history still gets a (shorter-horizon) backtest; the output says which horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import numpy as np

from exchange import clock
from exchange.errors import DomainError
from markets.marketdata.common import quantizer
from markets.marketdata.intervals import parse_interval
from markets.models import Market
from markets.selectors import candles, get_market
from reporting.statistics import (
    Calibration,
    MarkovChain,
    PatternStats,
    backtest,
    mc_error,
    pattern_path,
    pattern_stats,
    select_order,
    sequence_probability,
    simulate,
    to_units,
    vol_unit,
)
from reporting.statistics.montecarlo import QUANTILES

MAX_CANDLES = 999  # closed klines; one more (the open one) is read: candles() caps at 1000
MIN_MOVES = 40
MAX_UNITS = 10
MAX_HORIZON = 365
MAX_PATTERN = 6
PATHS_RANGE = (100, 100_000)
CALIBRATION_PATHS = 300
DEFAULT_PATTERN = (-5, 1)


class InvalidForecastParameter(DomainError):
    """A forecast parameter (horizon, pattern, unit, paths, seed, level) is malformed."""

    code = "forecast_parameter_invalid"


class TooLittleHistory(DomainError):
    """The market has too few candles at this interval to fit and backtest a chain."""

    code = "forecast_too_little_history"


@dataclass(frozen=True)
class Unit:
    """The move unit: "fixed" (a price step) or "vol" (the median absolute move)."""

    kind: str
    size: Decimal | None = None


@dataclass(frozen=True)
class Forecast:
    """Everything the page and the command show."""

    market: Market
    interval: str
    horizon: int
    paths: int
    seed: int
    candles: int
    last_close: Decimal
    unit_kind: str
    unit: Decimal
    chain: MarkovChain
    bics: dict[int, float]
    pattern: PatternStats
    fan: list[tuple[int, list[Decimal]]]  # (step, prices at QUANTILES)
    levels: list[tuple[Decimal, float, float]]  # (level, P(end below), P(end above))
    continuation_mc: float
    continuation_mc_error: float
    continuation_exact: float
    calibration: Calibration


def parse_pattern(value: object) -> tuple[int, ...]:
    """ "-5,1" -> (-5, 1): 1..6 non-zero integers within +-MAX_UNITS."""
    try:
        items = [int(part) for part in str(value).split(",")]
    except ValueError:
        items = []
    if not (1 <= len(items) <= MAX_PATTERN and all(0 < abs(i) <= MAX_UNITS for i in items)):
        raise InvalidForecastParameter(
            f"The pattern must be 1 to {MAX_PATTERN} comma-separated non-zero whole numbers "
            f"of units within ±{MAX_UNITS}, e.g. -5,1.",
            field="pattern",
        )
    return tuple(items)


def parse_unit(value: object) -> Unit:
    """ "vol", or "fixed:<positive price>" (e.g. fixed:5)."""
    text = str(value).strip().lower()
    if text == "vol":
        return Unit("vol")
    if text.startswith("fixed:"):
        try:
            size = Decimal(text.removeprefix("fixed:"))
        except InvalidOperation:
            size = Decimal(0)
        if size.is_finite() and size > 0:
            return Unit("fixed", size)
    raise InvalidForecastParameter(
        'The unit must be "vol" or "fixed:<positive price>", e.g. fixed:5.', field="unit"
    )


def _whole(value: object, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        number = None
    else:
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or not lo <= number <= hi:
        raise InvalidForecastParameter(
            f"The {field} must be a whole number from {lo} to {hi}.", field=field
        )
    return number


def _level(value: object) -> Decimal:
    try:
        level = Decimal(str(value))
    except InvalidOperation:
        level = Decimal(-1)
    if not (level.is_finite() and level > 0):
        raise InvalidForecastParameter("Each level must be a positive price.", field="levels")
    return level


def forecast(
    symbol: str,
    *,
    interval: str = "1d",
    horizon: object = 30,
    pattern: object = "-5,1",
    unit: object = "vol",
    seed: object = 1,
    paths: object = 10_000,
    levels: list[object] | None = None,
) -> Forecast:
    """The forecast of market `symbol`; see the module docstring. Raises MarketNotFound,
    InvalidInterval, InvalidForecastParameter, TooLittleHistory."""
    parse_interval(interval)
    steps = _whole(horizon, "horizon", 1, MAX_HORIZON)
    shape = (
        parse_pattern(pattern)
        if not isinstance(pattern, tuple)
        else parse_pattern(",".join(str(p) for p in pattern))
    )
    move_unit = parse_unit(unit)
    rng_seed = _whole(seed, "seed", 0, 2**32 - 1)
    count = _whole(paths, "paths", *PATHS_RANGE)
    wanted = [_level(level) for level in levels or []]
    market = get_market(symbol=symbol)
    now = clock.now()
    klines = candles(market, interval, limit=MAX_CANDLES + 1)
    closes_dec = [k.close for k in klines if k.close_time < now][-MAX_CANDLES:]
    if len(closes_dec) < MIN_MOVES + 1:
        raise TooLittleHistory(
            f"{market.symbol} has {len(closes_dec)} candles at {interval}; the forecast "
            f"needs at least {MIN_MOVES + 1}.",
            field="market",
        )
    closes = np.array([float(c) for c in closes_dec])  # statistics, not money (see above)
    size = float(move_unit.size) if move_unit.size is not None else vol_unit(closes)
    if size <= 0:
        raise TooLittleHistory(
            f"{market.symbol}'s price never moved at {interval}: no volatility unit.",
            field="market",
        )
    moves = to_units(closes, size, MAX_UNITS)
    chain, bics = select_order(moves, alphabet=shape)
    simulation = simulate(chain, moves, steps, count, np.random.default_rng(rng_seed))
    tick = quantizer(market.tick_size)
    last = closes_dec[-1]

    def price(units: float) -> Decimal:
        return (last + Decimal(repr(float(units) * size))).quantize(tick, ROUND_HALF_EVEN)

    fan = simulation.fan()
    continuation = pattern_path(moves, shape, steps)
    continuation_mc = simulation.sequence_probability(continuation)
    cal_horizon = min(steps, len(moves) // 4)
    return Forecast(
        market=market,
        interval=interval,
        horizon=steps,
        paths=count,
        seed=rng_seed,
        candles=len(closes_dec),
        last_close=last,
        unit_kind=move_unit.kind,
        unit=Decimal(repr(size)).quantize(tick, ROUND_HALF_EVEN),
        chain=chain,
        bics=bics,
        pattern=pattern_stats(moves, shape),
        fan=[
            (step + 1, [price(fan[q, step]) for q in range(len(QUANTILES))])
            for step in range(steps)
        ],
        levels=[
            (
                level,
                simulation.end_probability(float(level - last) / size, below=True),
                simulation.end_probability(float(level - last) / size, below=False),
            )
            for level in (wanted or [last])
        ],
        continuation_mc=continuation_mc,
        continuation_mc_error=mc_error(continuation_mc, count),
        continuation_exact=sequence_probability(chain, moves, continuation),
        calibration=backtest(
            moves,
            chain.order,
            cal_horizon,
            paths=min(count, CALIBRATION_PATHS),
            min_fit=len(moves) // 2,
            seed=rng_seed,
        ),
    )
