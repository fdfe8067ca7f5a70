"""Binance stream names, parsed: `btcusdt@depth@100ms`, `btcusdt@kline_1m`, `!ticker@arr` ...

Names are case-insensitive on the way in (Binance's are lowercase) and kept lowercase as
given, which is how a client sees them in combined frames and LIST_SUBSCRIPTIONS. A name
is parsed without the database: the symbol is checked against the markets later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markets.marketdata.intervals import INTERVALS

MAX_NAME_CHARS = 64

DEPTH = "depth"  # diffs, every 1000 ms or 100 ms
PARTIAL = "partial"  # top 5/10/20 levels, every 1000 ms or 100 ms
TRADE = "trade"
AGG_TRADE = "aggTrade"
KLINE = "kline"
TICKER = "ticker"
MINI_TICKER = "miniTicker"
BOOK_TICKER = "bookTicker"
ALL_TICKERS = "allTickers"
ALL_MINI_TICKERS = "allMiniTickers"
USER = "user"  # the connection's own user data (listenKey or web session)

USER_STREAM_NAME = "userdata"
PARTIAL_LEVELS = (5, 10, 20)

_SYMBOL_STREAM = re.compile(
    r"^(?P<symbol>[a-z0-9]{2,40})@(?P<rest>depth(?:5|10|20)?(?:@100ms|@1000ms)?|trade|aggtrade"
    r"|kline_[0-9a-z]{2,3}|ticker|miniticker|bookticker)$"
)


class StreamNameError(ValueError):
    """A stream name that is not one of ours (the reason is shown to the client)."""


@dataclass(frozen=True, slots=True)
class StreamName:
    name: str  # lowercase, as the client sees it
    kind: str
    symbol: str = ""  # Binance's (BTCUSDT), upper case; "" for all-market and user streams
    speed_ms: int = 0  # depth and partial depth
    levels: int = 0  # partial depth
    interval: str = ""  # kline

    @property
    def per_market(self) -> bool:
        return bool(self.symbol)


def parse(raw: object) -> StreamName:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_NAME_CHARS or not raw.isascii():
        raise StreamNameError("Invalid stream name.")
    name = raw.lower()
    if name == "!ticker@arr":
        return StreamName(name, ALL_TICKERS)
    if name == "!miniticker@arr":
        return StreamName(name, ALL_MINI_TICKERS)
    if name == USER_STREAM_NAME:
        return StreamName(name, USER)
    found = _SYMBOL_STREAM.fullmatch(name)
    if found is None:
        raise StreamNameError(f"Invalid stream name {raw[:MAX_NAME_CHARS]!r}.")
    symbol, rest = found["symbol"].upper(), found["rest"]
    if rest.startswith("depth"):
        speed = 100 if rest.endswith("@100ms") else 1000
        head = rest.split("@", 1)[0]
        if head == "depth":
            return StreamName(name, DEPTH, symbol, speed_ms=speed)
        return StreamName(name, PARTIAL, symbol, speed_ms=speed, levels=int(head[5:]))
    if rest.startswith("kline_"):
        interval = raw.split("_", 1)[1]  # 1M (month) and 1m (minute) differ only in case
        if interval == "1s" or interval not in INTERVALS:
            raise StreamNameError(f"Invalid kline interval {interval!r}.")
        return StreamName(f"{symbol.lower()}@kline_{interval}", KLINE, symbol, interval=interval)
    kinds = {
        "trade": TRADE,
        "aggtrade": AGG_TRADE,
        "ticker": TICKER,
        "miniticker": MINI_TICKER,
        "bookticker": BOOK_TICKER,
    }
    return StreamName(name, kinds[rest], symbol)
