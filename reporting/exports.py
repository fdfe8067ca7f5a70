"""Streamed CSV exports: trades, one user's ledger postings, the volume summaries.

A trades export can be ten million rows, so nothing here builds a list: each export is a
generator of CSV lines over `QuerySet.iterator(chunk_size=...)`, which on PostgreSQL reads
through a server-side cursor, and the view hands it to `StreamingHttpResponse`. Memory is
one chunk of rows and one line of text, whatever the range. Amounts are written with
`plain` (exact Decimal digits, never floats or exponents); times in ISO 8601 UTC.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date

from accounts.models import Posting, User
from markets.models import Market
from reporting.models import Calendar
from reporting.reports import Granularity, local_bounds, plain, volume_series
from trading.models import Trade

# Rows fetched per round trip of the server-side cursor: large enough that the network is
# not the bottleneck, small enough that a chunk of trades stays well under a megabyte.
CHUNK_SIZE = 2_000

TRADE_HEADER = (
    "market", "seq", "created_at", "price", "quantity", "quote_quantity", "taker_side",
    "maker_fee", "taker_fee", "buy_order_id", "sell_order_id",
)  # fmt: skip
LEDGER_HEADER = (
    "entry_id", "created_at", "kind", "ref", "asset", "balance_kind", "scope", "bucket", "amount",
)  # fmt: skip
VOLUME_HEADER = (
    "market", "calendar", "period", "first_day", "last_day", "base_volume", "quote_volume",
    "trade_count", "maker_fees", "taker_fees", "trader_count",
)  # fmt: skip


class _Echo:
    """A file-like object whose write returns the line, so csv.writer builds one line."""

    def write(self, value: str) -> str:
        return value


def _lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def trade_lines(*, market: Market | None, start: date, end: date) -> Iterator[str]:
    """Trades settled in the local days [start, end], by market then sequence."""
    low, high = local_bounds(start, end)
    trades = Trade.objects.filter(created_at__gte=low, created_at__lt=high)
    if market is not None:
        trades = trades.filter(market=market)
    rows = (
        trades.order_by("market_id", "seq")
        .values_list(
            "market__symbol",
            "seq",
            "created_at",
            "price",
            "quantity",
            "quote_quantity",
            "taker_side",
            "maker_fee",
            "taker_fee",
            "buy_order_id",
            "sell_order_id",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    return _lines(
        TRADE_HEADER,
        (
            (
                sym,
                seq,
                at.isoformat(),
                plain(p),
                plain(q),
                plain(qq),
                side,
                plain(mf),
                plain(tf),
                b,
                s,
            )
            for sym, seq, at, p, q, qq, side, mf, tf, b, s in rows
        ),
    )


def ledger_lines(*, user: User, start: date, end: date) -> Iterator[str]:
    """Every posting to `user`'s balances in journal entries of the days [start, end]."""
    low, high = local_bounds(start, end)
    rows = (
        Posting.objects.filter(
            balance__user=user, entry__created_at__gte=low, entry__created_at__lt=high
        )
        .order_by("entry_id", "pk")
        .values_list(
            "entry_id",
            "entry__created_at",
            "entry__kind",
            "entry__ref",
            "asset__code",
            "balance__kind",
            "balance__scope",
            "bucket",
            "amount",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    return _lines(
        LEDGER_HEADER,
        (
            (entry, at.isoformat(), kind, ref, asset, bkind, scope, bucket, plain(amount))
            for entry, at, kind, ref, asset, bkind, scope, bucket, amount in rows
        ),
    )


def volume_lines(
    *,
    market: Market | None,
    start: date,
    end: date,
    granularity: Granularity,
    calendar: Calendar,
) -> Iterator[str]:
    """The volume summary of each market (or one) per period: the volume page's table.

    At most a few thousand periods per market (the form bounds the range), read market by
    market so only one market's series is held at a time.
    """
    markets = [market] if market is not None else list(Market.objects.order_by("symbol"))

    def rows() -> Iterator[Sequence[object]]:
        for each in markets:
            series = volume_series(
                market=each, start=start, end=end, granularity=granularity, calendar=calendar
            )
            for r in series:
                yield (
                    each.symbol, calendar.value, r.period.label, r.period.first_day.isoformat(),
                    r.period.last_day.isoformat(), plain(r.base_volume), plain(r.quote_volume),
                    r.trade_count, plain(r.maker_fees), plain(r.taker_fees), r.trader_count,
                )  # fmt: skip

    return _lines(VOLUME_HEADER, rows())


def filename(kind: str, start: date, end: date, *parts: str) -> str:
    """`trades_BTC-USDT_2026-01-01_2026-01-31.csv`: safe characters only."""
    words = [kind, *parts, start.isoformat(), end.isoformat()]
    safe = "_".join("".join(c if c.isalnum() or c in "-." else "-" for c in w) for w in words)
    return f"{safe}.csv"
