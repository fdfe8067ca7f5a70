"""Websocket streams: Binance-named market streams, the user data stream, the web UI's socket.

`app` is the ASGI application (exchange/asgi.py routes every websocket to it), `hub` the
per-process fan-out from the channels groups settlement publishes to, `names` the stream
names, `frames` the payloads, `listenkeys` the user-stream keys. docs/api/streams.md says
what a client can rely on.
"""
