"""Celery tasks of reporting: thin shells around the rollup (and, imported here so the
worker registers it, the nightly fee-tier assignment of reporting.tiers)."""

from __future__ import annotations

from celery import shared_task

from reporting import tiers  # noqa: F401  (registers reporting.tiers.assign_fee_tiers)
from reporting.rollup import rollup


@shared_task(name="reporting.tasks.rollup_volumes", ignore_result=True)
def rollup_volumes() -> None:
    """Beat, every minute: roll every market's new trades into the volume summaries.

    Safe to run twice or concurrently (the cursor row lock serialises runs per market);
    bounded per market (rollup.MAX_PASSES), so a catch-up spreads over several runs.
    """
    rollup()
