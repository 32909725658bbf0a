"""The audit log of admin actions that change data: who, what, when, on which object, with what details.

`audit_record` is called by the services that make those changes, inside their own transaction, so an
event exists exactly when its change was committed (a rolled-back change leaves no event, a committed one
always has its event). Events are never changed or deleted: the admin is read-only, the API lists them,
and on PostgreSQL a trigger refuses UPDATE and DELETE (except the actor becoming NULL when a user is
deleted: the username is kept in `actor_username`).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models

from annotate.core.choices import AuditAction
from annotate.core.models import AuditEvent
from annotate.core.request_context import request_id

MAX_REPR = 200


def audit_record(
    *,
    actor: Any,
    action: AuditAction | str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one change. Must run inside the transaction that makes the change (a programming error
    otherwise: the event could outlive a rolled-back change, or be lost after a committed one)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records.")
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user is not None else "",
        action=str(action),
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:MAX_REPR],
        details=details or {},
        request_id=request_id.get()[:64],
    )


def audit_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """The changed fields for the audit log: plain values as they are, related objects by id."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if isinstance(value, list | tuple):
            out[name] = [getattr(v, "pk", v) for v in value]
        else:
            value = getattr(value, "pk", value)
            out[name] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out
