"""The kernel watch: OOM kills inside servers and servers that stopped without a stop asked
for, recorded as events their tenants read (``GET /v1/servers/{id}/events``).

It runs on each usage sample pass, on the counters that pass read in bulk (no LXD call per
server) and one read of the kernel log; the reconciler calls ``stopped_unexpectedly`` for the
stops it finds between passes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server, ServerWatch
from containervps.lxd import InstanceLogs
from containervps.services.actions.commands import ActionStatus
from containervps.services.events import EventType, record_in
from containervps.services.metering.cgroups import payload
from containervps.services.metering.host_counters import Counters, counter_growth
from containervps.services.metering.kernel_log import KernelLog, OomKill, read_oom_kills
from containervps.services.servers.states import ServerState

log = logging.getLogger(__name__)

__all__ = ["Watched", "memcg_of", "stop_detail", "stopped_unexpectedly", "watch"]

STOPPED_INSIDE = "stopped inside the server"


@dataclass(frozen=True)
class Watched:
    oom_events: int  # servers with new OOM kills
    stops: int  # servers found stopped without a stop asked for


def memcg_of(server: Server) -> str:
    """The server's memory cgroup as the kernel log names it."""
    return f"/{payload(server.lxd_project, server.lxd_name)}"


def stop_detail(kills: list[OomKill]) -> str:
    """Why a server stopped, as its status_detail says it."""
    init = next((k for k in kills if k.of_init), None)
    if init is not None:
        return f"stopped after an OOM kill of its init ({init.task})"
    return STOPPED_INSIDE


def _since(row: ServerWatch | None, log_: KernelLog) -> int:
    """The last log record already accounted for the server (the log restarts on a boot)."""
    if row is None:
        return log_.last_seq  # first look: older lines may be a former server's of that name
    return row.log_seq if row.log_seq <= log_.last_seq else -1


def _oom_event(
    session: Session, server: Server, *, count: int, kills: list[OomKill], failcnt: int
) -> None:
    names = sorted({k.task for k in kills})
    what = f"{count} process{'es' if count > 1 else ''}"
    message = (
        f"the kernel's OOM killer killed {what}"
        + (f" ({', '.join(names)})" if names else "")
        + f" in the server: it reached its plan's memory limit ({server.memory_mib} MiB)"
    )
    details: dict[str, Any] = {
        "count": count,
        "killed": names,
        "memory_mib": server.memory_mib,
        "failcnt": failcnt,
    }
    record_in(
        session,
        server=server,
        type=EventType.OOM_KILL,
        message=message,
        severity="warning",
        details=details,
    )


def _stop_asked(session: Session, server_id: int, seen_at: datetime) -> bool:
    """An action is running on the server, or started since LXD was asked for its state."""
    return (
        session.exec(
            select(Action.id).where(
                Action.server_id == server_id,
                (col(Action.status) == ActionStatus.RUNNING) | (col(Action.started) >= seen_at),
            )
        ).first()
        is not None
    )


def _mark_stopped(
    settings: Settings,
    session: Session,
    server: Server,
    *,
    kills: list[OomKill],
    seen_at: datetime,
) -> str | None:
    """Off with why, and the events (in the caller's transaction); None if a stop was asked
    for or the server is no longer running in the database."""
    assert server.id is not None
    row = session.get(Server, server.id)
    if row is None or row.status != ServerState.RUNNING or _stop_asked(session, server.id, seen_at):
        return None
    detail = stop_detail(kills)
    row.status, row.status_detail = ServerState.OFF, detail
    session.add(row)
    if kills:
        _oom_event(session, row, count=len(kills), kills=kills, failcnt=0)
    init = next((k for k in kills if k.of_init), None)
    record_in(
        session,
        server=row,
        type=EventType.STOPPED_UNEXPECTEDLY,
        message=f"the server {detail}, without a stop asked for; it stays off until powered on",
        severity="warning",
        details={"cause": "oom_kill_of_init" if init else "inside", "oom_kills": len(kills)},
    )
    log.warning(
        "server stopped unexpectedly",
        extra={"server": server.id, "detail": detail, **_last_words(settings, row)},
    )
    return detail


def _last_words(settings: Settings, server: Server) -> dict[str, list[str]]:
    """The tails of the stopped container's console and LXC logs, for the operator's log (a
    member keeps its logs on its own machine)."""
    if server.member is not None:
        return {}
    logs = InstanceLogs(settings.lxd_log_dir)
    project, name = server.lxd_project, server.lxd_name
    return {
        file.replace(".", "_"): logs.tail(project=project, name=name, file=file)
        for file in ("console.log", "lxc.log")
    }


def _remember(
    session: Session, server_id: int, *, oom_kills: int, log_seq: int, at: datetime
) -> None:
    row = session.get(ServerWatch, server_id) or ServerWatch(server_id=server_id)
    row.oom_kills, row.log_seq, row.checked_at = oom_kills, log_seq, at
    session.add(row)


def watch(
    settings: Settings,
    *,
    servers: Iterable[Server],
    states: dict[tuple[str, str], Counters],
    seen_at: datetime,
    kernel_log: KernelLog | None = None,
) -> Watched:
    """Compare each server's kernel counters (read after ``seen_at``) with the last check:
    new OOM kills become an event; a server running in the database but stopped in LXD, with
    no stop asked for, goes off with why (and events)."""
    log_ = kernel_log if kernel_log is not None else read_oom_kills()
    ooms = stops = 0
    with session_scope(settings, immediate=True) as session:
        for server in servers:
            state = states.get((server.lxd_project, server.lxd_name))
            if server.id is None or state is None:
                continue  # gone from LXD: the reconciler's
            row = session.get(ServerWatch, server.id)
            kills = log_.kills_of(memcg_of(server), after=_since(row, log_))
            if state.status == "Running":
                before = row.oom_kills if row is not None else 0
                count = max(int(counter_growth(before, state.oom_kills)), len(kills))
                if count:
                    _oom_event(
                        session, server, count=count, kills=kills, failcnt=state.memory_failcnt
                    )
                    ooms += 1
            elif state.status == "Stopped" and server.status == ServerState.RUNNING:
                stops += (
                    _mark_stopped(settings, session, server, kills=kills, seen_at=seen_at)
                    is not None
                )
            seq = log_.last_seq if log_.last_seq >= 0 or row is None else row.log_seq
            _remember(session, server.id, oom_kills=state.oom_kills, log_seq=seq, at=seen_at)
    return Watched(oom_events=ooms, stops=stops)


def stopped_unexpectedly(settings: Settings, *, server: Server, seen_at: datetime) -> str | None:
    """The reconciler found ``server`` stopped: mark it off with why, unless a stop was asked
    for; return the detail set (None: left alone)."""
    assert server.id is not None
    log_ = read_oom_kills()
    with session_scope(settings, immediate=True) as session:
        row = session.get(ServerWatch, server.id)
        kills = log_.kills_of(memcg_of(server), after=_since(row, log_))
        detail = _mark_stopped(settings, session, server, kills=kills, seen_at=seen_at)
        if detail is not None:
            _remember(session, server.id, oom_kills=0, log_seq=log_.last_seq, at=seen_at)
    return detail
