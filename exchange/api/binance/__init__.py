"""The Binance-compatible spot API (`/api/v3/...`, two `/sapi` stubs, `/unsupported/...`).

Partners' tools (ccxt's `binance` and `binanceus` classes and the bots on them) work against
it by changing URLs only. Paths, parameter names, string decimals, status enums and error
bodies (`{"code": -NNNN, "msg": "..."}`) are Binance's; the behaviour behind them is the
exchange's own services and selectors, called by thin views.

    base.py      the view bases (public, signed), parameter parsing, symbols, formatting
    errors.py    our errors -> Binance codes and messages; the compat exception handler
    public.py    market data: ping, time, exchangeInfo, depth, trades, aggTrades, klines, tickers
    account.py   signed: account, commission, orders, open orders, all orders, my trades
    urls.py      the routes (no trailing slashes: ccxt calls /api/v3/exchangeInfo)
"""
