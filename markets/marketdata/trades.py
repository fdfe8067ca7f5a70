"""Recent trades of a market, by trade id (the per-market sequence) or time.

`trade_table()` is market data's one reach into trading's tables: markets may not import
trading (an import-linter contract: trading builds on markets), but the trades settlement
writes are what candles are checked and rebuilt against and what recent trades are. The
model is looked up by name through the app registry, so a renamed table or field fails
loudly here rather than in a string of SQL elsewhere.

`recent_trades` follows Binance's /trades (the latest), /historicalTrades (``fromId``) and
/aggTrades (``startTime``/``endTime``). A trade's id is its ``seq``: unique per market and
increasing, but not contiguous (the engine's other events take seqs in between), so
``from_id`` means "ids at or after", never "the from_id-th trade".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.apps import apps
from django.db import models

from markets.marketdata.common import check_limit, notional_quantizer, quantizer, resolve_market
from markets.marketdata.errors import InvalidRange, InvalidTradeId
from markets.models import Market

MAX_TRADES = 1000
DEFAULT_TRADES = 500
_FIELDS = ("seq", "price", "quantity", "quote_quantity", "created_at", "taker_side")


def trade_model() -> type[models.Model]:
    """trading's Trade model (settlement's trade rows)."""
    return apps.get_model("trading", "Trade")


def trade_table() -> str:
    """The trades table's name, for market data's set-based SQL."""
    return str(trade_model()._meta.db_table)


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade as market data shows it: ``id`` is the trade's per-market seq.

    ``is_buyer_maker`` is Binance's flag: the resting order was the buy, so the taker sold.
    """

    id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    time: datetime
    is_buyer_maker: bool


def recent_trades(
    market: Market | str,
    from_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = DEFAULT_TRADES,
) -> list[Trade]:
    """Up to `limit` (1..1000) trades of the market, ascending by id.

    * ``from_id``: the first `limit` trades with id >= from_id;
    * ``start`` and/or ``end`` (aware datetimes, both inclusive): the first `limit` trades
      at or after `start` (and at or before `end`); with `end` alone, the last `limit` at
      or before it;
    * neither: the latest `limit` trades.

    ``from_id`` cannot be combined with a time range (InvalidRange, field "from_id"): the
    two would each decide where the page starts. Raises MarketNotFound, InvalidLimit,
    InvalidTradeId, InvalidRange; it only reads.

    Indexes: by id, the unique (market, seq) (forward from `from_id`, backward for the
    latest); by time, (market, -created_at) (a range scan, ties on the batch time ordered
    by seq: every trade of a batch has its batch's time).
    """
    found = resolve_market(market)
    check_limit(limit, maximum=MAX_TRADES)
    _check_arguments(from_id, start, end)
    rows = trade_model()._default_manager.filter(market_id=found.pk)
    newest_first = False
    if from_id is not None:
        rows = rows.filter(seq__gte=from_id).order_by("seq")
    elif start is not None:
        rows = rows.filter(created_at__gte=start)
        if end is not None:
            rows = rows.filter(created_at__lte=end)
        rows = rows.order_by("created_at", "seq")
    elif end is not None:
        rows = rows.filter(created_at__lte=end).order_by("-created_at", "-seq")
        newest_first = True
    else:
        rows = rows.order_by("-seq")
        newest_first = True
    picked = list(rows.values_list(*_FIELDS)[:limit])
    if newest_first:
        picked.reverse()
    tick, lot = quantizer(found.tick_size), quantizer(found.lot_size)
    # price x quantity is exact at the sum of both places; settlement stores it so.
    quote = notional_quantizer(found)
    trades = [
        Trade(
            id=seq,
            price=price.quantize(tick),
            quantity=quantity.quantize(lot),
            quote_quantity=quote_quantity.quantize(quote),
            time=created_at.astimezone(UTC),
            is_buyer_maker=taker_side == "sell",
        )
        for seq, price, quantity, quote_quantity, created_at, taker_side in picked
    ]
    # A time page is picked by time; ids and times agree except under a shifted clock.
    trades.sort(key=lambda trade: trade.id)
    return trades


def _check_arguments(from_id: object, start: object, end: object) -> None:
    if from_id is not None:
        if isinstance(from_id, bool) or not isinstance(from_id, int):
            raise InvalidTradeId("The trade id must be an integer.", field="from_id")
        if from_id < 0:
            raise InvalidTradeId("The trade id cannot be negative.", field="from_id")
        if start is not None or end is not None:
            raise InvalidRange("Give either a trade id or a time range, not both.", field="from_id")
    for name, moment in (("start", start), ("end", end)):
        if moment is None:
            continue
        if not isinstance(moment, datetime):
            raise InvalidRange(f"The {name} must be a time.", field=name)
        if moment.utcoffset() is None:
            raise InvalidRange(f"The {name} time needs a time zone.", field=name)
    if isinstance(start, datetime) and isinstance(end, datetime) and start > end:
        raise InvalidRange("The start is after the end.", field="start")
