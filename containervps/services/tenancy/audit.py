"""The audit log: one row per mutating call (who, what, target, outcome, request id)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import AuditLog
from containervps.errors import ContainerVpsError

log = logging.getLogger(__name__)

__all__ = ["audited", "recent", "record"]


def record(
    settings: Settings,
    *,
    actor: str,
    action: str,
    outcome: str,
    tenant_id: int | None = None,
    target: str | None = None,
    status_code: int | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in its own transaction (a failed call's rollback keeps it)."""
    try:
        with session_scope(settings, immediate=True) as session:
            session.add(
                AuditLog(
                    actor=actor,
                    action=action,
                    outcome=outcome,
                    tenant_id=tenant_id,
                    target=target,
                    status_code=status_code,
                    request_id=request_id,
                    details=details or {},
                )
            )
    except (SQLAlchemyError, ContainerVpsError):
        # Auditing must not turn a finished call into a failure; the log line keeps the trace.
        log.exception("audit write failed", extra={"action": action, "actor": actor})


@contextmanager
def audited(
    settings: Settings, *, actor: str, action: str, target: str | None = None
) -> Iterator[dict[str, Any]]:
    """Record ``action`` with outcome success or the domain error code (CLI commands)."""
    note: dict[str, Any] = {}
    try:
        yield note
    except ContainerVpsError as exc:
        record(
            settings,
            actor=actor,
            action=action,
            target=note.get("target", target),
            tenant_id=note.get("tenant_id"),
            outcome=f"error:{exc.code}",
            details={"message": exc.brief},
        )
        raise
    record(
        settings,
        actor=actor,
        action=action,
        target=note.get("target", target),
        tenant_id=note.get("tenant_id"),
        outcome="success",
    )


def recent(settings: Settings, *, limit: int = 50) -> list[AuditLog]:
    """The latest audit rows, newest first."""
    with session_scope(settings) as session:
        rows = session.exec(select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit))
        return list(rows.all())
