"""Volume summaries (later issue)."""
