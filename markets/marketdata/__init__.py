"""Market data: candles, tickers, the sequenced depth book and recent trades.

Settlement is the one producer (markets.sql, in its transaction); these modules are the
readers, exported through markets.selectors. The partner API, the websocket streams and
the web UI call markets.selectors and nothing else for market data.
"""
