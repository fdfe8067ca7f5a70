"""The Celery application and the beat schedule (declared here, reviewed as code)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")

app = Celery("exchange")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Long-running loops live on their own queue so short tasks are never stuck behind them.
app.conf.task_routes = {
    "trading.tasks.matching_loop_task": {"queue": "matching"},
    "trading.tasks.settlement_loop_task": {"queue": "matching"},
}
app.conf.beat_schedule = {
    # Re-send outbox rows whose after-commit XADD never happened (crash, Redis down).
    "trading.sweep_outbox": {"task": "trading.tasks.sweep_outbox", "schedule": 5.0},
    # Every market gets its loops back within one period after a crash or a new market.
    # Every 0.5 s: a dead loop's lease expires after 1.5 s, so its market waits < 3 s in all.
    "trading.lease_watchdog": {
        "task": "trading.tasks.lease_watchdog",
        "schedule": 0.5,
        "options": {"expires": 2.0},  # a backlog (short worker down) is dropped, not replayed
    },
    # Bounded replay after a restart; the loops also snapshot every 50k commands / 30 s.
    "trading.snapshot_books": {"task": "trading.tasks.snapshot_books", "schedule": 60.0},
    # Money invariants and liveness (unmatched, unsettled, unpublished work); expires so a
    # backlog of audits never piles up behind a slow one.
    "trading.audit_exchange": {
        "task": "trading.tasks.audit_exchange",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    # Volume summaries: trades after each market's cursor into day/month/year rows (both
    # calendars); idempotent, so an overlapping or repeated run changes nothing.
    "reporting.rollup_volumes": {
        "task": "reporting.tasks.rollup_volumes",
        "schedule": 60.0,
        "options": {"expires": 55.0},
    },
    # Fee tiers from the users' 30-day volume (reporting.tiers), nightly after the day's
    # rollups (00:15 UTC); an order keeps the rates it was accepted with.
    "reporting.assign_fee_tiers": {
        "task": "reporting.tiers.assign_fee_tiers",
        "schedule": crontab(hour=0, minute=15),
        "options": {"expires": 3600.0},
    },
    # Partner webhooks: due deliveries, each run bounded (deliver.RUN_BUDGET_SECONDS);
    # expires so a backlog of runs (short worker down) is dropped, the rows stay due.
    "accounts.deliver_webhooks": {
        "task": "accounts.tasks.deliver_webhooks",
        "schedule": 2.0,
        "options": {"expires": 10.0},
    },
    # Delivered and dead webhook deliveries past WEBHOOKS_RETENTION_DAYS.
    "accounts.purge_webhook_deliveries": {
        "task": "accounts.tasks.purge_webhook_deliveries",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    # v1 Idempotency-Key records past IDEMPOTENCY_KEY_TTL_HOURS (they no longer count).
    "accounts.purge_idempotency_records": {
        "task": "accounts.tasks.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
}
