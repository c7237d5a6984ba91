"""Drain a cluster member for maintenance, with notice to tenants, and restore it.

``request_drain`` does, in one BEGIN IMMEDIATE transaction, so that nothing is half-done:

1. refuses (409) a member whose state cannot become ``draining`` (evacuated: restore it
   first), servers on it that another action holds (a create, resize, power, ... in flight:
   retry when they finished) or that are broken (missing, error), and a drain that would not
   fit: every server is placed on the other members by the same rules as a create
   (placement.py, the drained member excluded) one after another, biggest first, and the
   refusal names each server that finds no room and why. Nothing moves unless all of them fit;
2. sets the member ``draining`` (placement stops admitting there);
3. writes one ``server.maintenance_notice`` event per server, for its tenant, saying when and
   how it will move, BEFORE anything moves;
4. writes one ``migrate_server`` action per server (services/servers/migrate.py), which the
   API's worker (or the CLI) then runs. The member becomes ``evacuated`` after the last
   server left; a server that could not move stays where it was, its action fails with the
   reason, and the member stays ``draining`` (a second drain retries what is left).

``restore_member`` puts the member back ``online``. Servers are not moved back (unlike
``lxc cluster restore``): each move costs its tenant an outage; new creates fill the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, HostMember, Server, utcnow
from containervps.errors import Conflict, ResourceUnavailable
from containervps.services.actions.commands import ActionStatus, Command
from containervps.services.actions.store import this_runner
from containervps.services.cluster import placement
from containervps.services.cluster.members import recorded
from containervps.services.cluster.states import MemberState, check_transition
from containervps.services.events import EventType, record_in
from containervps.services.servers.migrate import FROM
from containervps.services.servers.on_member import unreachable
from containervps.services.servers.states import ACTIVE

__all__ = ["Drain", "notice", "request_drain", "restore_member", "room_elsewhere"]


@dataclass(frozen=True)
class Drain:
    """An accepted drain: the member (draining, or evacuated when it held nothing) and the
    move action of each of its servers."""

    host: HostMember
    actions: list[Action]


def _on_member(session: Session, name: str) -> list[Server]:
    query = select(Server).where(col(Server.member) == name, col(Server.deleted_at).is_(None))
    return list(session.exec(query.order_by(col(Server.id))).all())


def _refuse_busy_or_broken(session: Session, name: str, servers: list[Server]) -> None:
    ids = [s.id for s in servers]
    running = session.exec(
        select(Action).where(
            col(Action.server_id).in_(ids), col(Action.status) == ActionStatus.RUNNING
        )
    ).all()
    busy = [{"server_id": a.server_id, "action_id": a.id, "command": a.command} for a in running]
    broken = [
        {"server_id": s.id, "status": s.status}
        for s in servers
        if s.status not in ACTIVE or unreachable(s)  # LXD cannot reach it to stop and move it
    ]
    if busy or broken:
        raise Conflict(
            f"host {name}: {len(busy)} server(s) busy with another action, "
            f"{len(broken)} in a state that cannot move",
            details={"host": name, "busy": busy, "not_movable": broken},
            resolution="wait for the actions (GET /v1/actions/{id}); delete or repair "
            "broken servers; then drain again",
        )


def room_elsewhere(
    session: Session, settings: Settings, *, name: str, servers: list[Server]
) -> dict[int, dict[str, Any]]:
    """Why each server of ``servers`` that finds no room off member ``name`` does not fit
    (empty: all fit). Each is placed as a create would be, biggest first, and counted where
    it lands for the next; the caller's transaction is left as it was."""
    unfit: dict[int, dict[str, Any]] = {}
    landed: list[Server] = []
    try:
        for server in sorted(servers, key=lambda s: (-s.memory_mib, -s.disk_gib, s.id or 0)):
            try:
                target = placement.place_server(session, settings, server, exclude=name)
            except ResourceUnavailable as exc:
                assert server.id is not None
                unfit[server.id] = {"name": server.name, "members": exc.details["members"]}
                continue
            server.member = target
            landed.append(server)
            session.flush()  # the next server's placement counts this one there
    finally:
        for server in landed:
            server.member = name
        session.flush()
    return unfit


def notice(*, host: str, running: bool, at: datetime, position: int, total: int) -> str:
    """What a tenant reads before its server moves."""
    how = (
        "it will be shut down (cleanly, then hard after the shutdown timeout), moved while "
        "stopped and started again there; containers cannot move live on this platform "
        "(LXD 5.0 without CRIU)"
        if running
        else "it is off: it will be moved and stay off"
    )
    return (
        f"Maintenance of host {host}: this server moves to another host, starting "
        f"{at:%Y-%m-%d %H:%M:%S} UTC (move {position} of {total}, one after another); {how}. "
        "It keeps its id, IP addresses, disk data and snapshots."
    )


def request_drain(settings: Settings, *, name: str, request_id: str | None = None) -> Drain:
    """Check, set ``draining``, give notice and write the moves (see the module doc)."""
    with session_scope(settings, immediate=True) as session:
        host = recorded(session, name)
        check_transition(name, current=MemberState(host.state), new=MemberState.DRAINING)
        servers = _on_member(session, name)
        _refuse_busy_or_broken(session, name, servers)
        unfit = room_elsewhere(session, settings, name=name, servers=servers)
        if unfit:
            names = ", ".join(f"{u['name']} (id {sid})" for sid, u in unfit.items())
            raise Conflict(
                f"host {name} cannot be drained: no room on the other members for {names}",
                details={"host": name, "unfit": unfit},
                resolution="add or restore a member, or free room on the others; nothing moved",
            )
        host.state = (MemberState.DRAINING if servers else MemberState.EVACUATED).value
        host.updated_at = at = utcnow()
        session.add(host)
        actions = [
            _notify_and_write_move(
                session, server, host=name, at=at, n=n, total=len(servers), request_id=request_id
            )
            for n, server in enumerate(servers, start=1)
        ]
        session.flush()
        return Drain(host=host, actions=actions)


def _notify_and_write_move(
    session: Session,
    server: Server,
    *,
    host: str,
    at: datetime,
    n: int,
    total: int,
    request_id: str | None,
) -> Action:
    """The notice first, then the action: the event is older than the action's start."""
    running = server.status != "off"
    record_in(
        session,
        server=server,
        type=EventType.MAINTENANCE_NOTICE,
        message=notice(host=host, running=running, at=at, position=n, total=total),
        severity="warning" if running else "info",
        details={"host": host, "at": at.isoformat(), "position": n, "total": total},
    )
    action = Action(
        tenant_id=server.tenant_id,
        server_id=server.id,
        command=Command.MIGRATE_SERVER,
        request_id=request_id,
        runner=this_runner(),
        params={FROM: host},
    )
    session.add(action)
    return action


def restore_member(settings: Settings, *, name: str) -> HostMember:
    """Put a member back ``online`` (placement admits there again); servers stay where they
    are. Refused while moves off it still run, and for a member already online."""
    with session_scope(settings, immediate=True) as session:
        host = recorded(session, name)
        if host.state == MemberState.ONLINE:
            raise Conflict(
                f"host {name} is online: there is nothing to restore",
                details={"host": name, "state": host.state},
            )
        check_transition(name, current=MemberState(host.state), new=MemberState.ONLINE)
        moving = session.exec(
            select(Action).where(
                col(Action.command) == Command.MIGRATE_SERVER,
                col(Action.status) == ActionStatus.RUNNING,
            )
        ).all()
        moving_off = [a.id for a in moving if a.params.get(FROM) == name]
        if moving_off:
            raise Conflict(
                f"host {name}: {len(moving_off)} server(s) are still moving off it",
                details={"host": name, "action_ids": moving_off},
                resolution="wait for those actions, then restore",
            )
        host.state, host.updated_at = MemberState.ONLINE.value, utcnow()
        session.add(host)
        return host
