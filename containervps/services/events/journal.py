"""Write and read server events (an OOM kill, an lxcfs repair, a rolled-back restore, ...)."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, func, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, Server
from containervps.services.servers.queries import live_server

log = logging.getLogger(__name__)

__all__ = ["EventType", "list_events", "record", "record_in"]


class EventType(StrEnum):
    """The event types a tenant may see (stable: clients filter on them)."""

    OOM_KILL = "server.oom_kill"  # the kernel killed a process at the plan's memory limit
    STOPPED_UNEXPECTEDLY = "server.stopped_unexpectedly"  # off without a stop asked for
    LXCFS_REPAIRED = "server.lxcfs_repaired"  # /proc views re-attached after lxcfs restarted
    RESTORE_ROLLED_BACK = "server.restore_rolled_back"  # a failed restore was undone
    ACTION_ROLLED_BACK = "server.action_rolled_back"  # an interrupted action was undone
    ACTION_FINISHED = "server.action_finished"  # an interrupted action was finished
    ACTION_FAILED = "server.action_failed"  # an interrupted action was resumed and failed
    TRANSFER_80 = "server.transfer_80"  # 80% of the month's transfer allowance sent
    TRANSFER_EXCEEDED = "server.transfer_exceeded"  # all of the month's allowance sent
    TRANSFER_THROTTLED = "server.transfer_throttled"  # egress held to the throttle rate
    TRANSFER_UNTHROTTLED = "server.transfer_unthrottled"  # the operator lifted or reset it
    MEMBER_OFFLINE = "server.member_offline"  # LXD cannot reach the cluster member it is on
    MEMBER_ONLINE = "server.member_online"  # that member answers again
    MEMBER_CHANGED = "server.member_changed"  # found on another member than recorded: adopted
    MAINTENANCE_NOTICE = "server.maintenance_notice"  # its host drains: it is about to move
    MAINTENANCE_MOVED = "server.maintenance_moved"  # moved to another host for maintenance
    MAINTENANCE_NOT_MOVED = "server.maintenance_not_moved"  # the move failed: it stayed


def record_in(
    session: Session,
    *,
    server: Server,
    type: EventType,
    message: str,
    severity: str = "info",
    details: dict[str, Any] | None = None,
) -> Event:
    """Add an event about ``server`` to the caller's transaction."""
    event = Event(
        tenant_id=server.tenant_id,
        server_id=server.id,
        type=type.value,
        severity=severity,
        message=message,
        details=details or {},
    )
    session.add(event)
    return event


def record(
    settings: Settings,
    *,
    server_id: int,
    type: EventType,
    message: str,
    severity: str = "info",
    details: dict[str, Any] | None = None,
) -> None:
    """Record an event in its own transaction; a failure is logged, never raised (the event
    reports work already done, which must not fail because of it)."""
    try:
        with session_scope(settings, immediate=True) as session:
            server = session.get(Server, server_id)
            if server is None:
                return
            record_in(
                session,
                server=server,
                type=type,
                message=message,
                severity=severity,
                details=details,
            )
    except SQLAlchemyError:
        log.exception("could not record event %s for server %s", type.value, server_id)


def list_events(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int | None = None,
    type: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[Event], int]:
    """One page of events, newest first (and the total); a server filter on another tenant's
    or a deleted server is NotFound."""
    query = select(Event)
    if tenant_id is not None:
        query = query.where(Event.tenant_id == tenant_id)
    if type:
        query = query.where(Event.type == type)
    with session_scope(settings) as session:
        if server_id is not None:
            live_server(session, server_id=server_id, tenant_id=tenant_id)
            query = query.where(Event.server_id == server_id)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(Event.id).desc()).offset((page - 1) * per_page).limit(per_page)
        ).all()
        return list(rows), int(total)
