"""The audit log: staff actions and security events, append-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from accounts.models import AuditLog, User


@dataclass(frozen=True, slots=True)
class ActorContext:
    """Who acts and from where, passed to services explicitly (services never see a request).

    Views build it once per request with `accounts.http.actor_context(request)`; code with
    no request (Celery tasks, management commands) passes `ActorContext.system()` or a
    context naming the staff user it acts for.
    """

    user: User | None = None
    ip_address: str | None = None

    @classmethod
    def system(cls) -> ActorContext:
        return cls()


def record_audit(
    *,
    action: str,
    actor: User | None = None,
    target: models.Model | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,  # Any: JSON-serialisable values
    context: ActorContext | None = None,
) -> AuditLog:
    """Append one audit row.

    Runs inside the caller's transaction when there is one, so a decision and its audit
    row commit or roll back together. `details` must never carry secrets. `context` fills
    `actor` and `ip_address` when they are not given.
    """
    if context is not None:
        actor = actor if actor is not None else context.user
        ip_address = ip_address if ip_address is not None else context.ip_address
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        ip_address=ip_address,
        details=details or {},
    )
