"""Markets: symbol, base/quote, tick, lot, fees, status (issue 4)."""
