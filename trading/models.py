"""Orders, trades, outbox and settlement cursors (issue 4)."""
