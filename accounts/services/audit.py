"""The audit log: staff actions and security events, append-only."""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts.models import AuditLog, User


def record_audit(
    *,
    action: str,
    actor: User | None = None,
    target: models.Model | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,  # Any: JSON-serialisable values
) -> AuditLog:
    """Append one audit row.

    Runs inside the caller's transaction when there is one, so a decision and its audit
    row commit or roll back together. `details` must never carry secrets.
    """
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        ip_address=ip_address,
        details=details or {},
    )
