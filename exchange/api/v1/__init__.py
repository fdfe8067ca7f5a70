"""The exchange's own resource API (`/api/v1/...`): to be built (issue 12)."""
