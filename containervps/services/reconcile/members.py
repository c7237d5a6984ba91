"""Servers across LXD cluster members, from the pass's one instance listing and one read of
the cluster's members.

- A member LXD reports unreachable is recorded ``offline`` (the state rules of
  services/cluster/states.py), and its servers become ``unknown`` with a detail naming the
  member and an event: their instances are still there, LXD just cannot reach them, so nothing
  of theirs is deleted, recreated or marked missing meanwhile. When the member answers again
  its recorded state follows LXD's and its servers take their status from LXD, with an event.
- A server whose instance LXD lists on another member than recorded (moved by hand, or by a
  move whose process died) is adopted: its member is updated, with an event.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, HostMember, Server, utcnow
from containervps.lxd import ClusterMemberInfo, InstanceInfo, Lxd
from containervps.services.actions.commands import ActionStatus
from containervps.services.cluster.states import TRANSITIONS, MemberState, observed_state
from containervps.services.events.journal import EventType, record_in
from containervps.services.reconcile.findings import Finding
from containervps.services.servers.on_member import OFFLINE_DETAIL, unreachable
from containervps.services.servers.states import SETTLED, STATUS_FROM_LXD, ServerState

log = logging.getLogger(__name__)

__all__ = ["MemberPass"]

Instances = dict[tuple[str, str], InstanceInfo]


def _offline_detail(member: str, message: str) -> str:
    why = f" ({message})" if message else ""
    return (
        OFFLINE_DETAIL.format(member=member)
        + f"{why}: LXD cannot reach it; the server is kept as it was and shown again when the "
        "member answers"
    )


class MemberPass:
    """One reconcile pass over the members (``dry_run``: findings only). ``offline`` holds
    the members LXD cannot reach, for the rest of the pass to leave their servers alone."""

    def __init__(self, settings: Settings, lxd: Lxd, *, dry_run: bool) -> None:
        self.settings = settings
        self.lxd = lxd
        self.dry_run = dry_run
        self.offline: frozenset[str] = frozenset()

    def run(self, instances: Instances, servers: list[Server]) -> list[Finding]:
        """Member states, servers of offline members (and back), adoptions; ``servers``: the
        live servers no action is running on."""
        with session_scope(self.settings) as session:
            hosts = list(session.exec(select(HostMember)).all())
        if not hosts:
            return []  # single-host mode
        reported = {m.name: m for m in self.lxd.cluster.members()}
        findings = self._member_states(hosts, reported)
        self.offline = frozenset(
            name for name, m in reported.items() if observed_state(m.status) is MemberState.OFFLINE
        )
        messages = {name: reported[name].message for name in self.offline}
        with session_scope(self.settings, immediate=True) as session:
            # ``servers`` were idle when listed; an action begun since (a move that already
            # holds its target as server.member) is left to its action.
            running = Action.status == ActionStatus.RUNNING
            busy = set(session.exec(select(Action.server_id).where(running)).all())
            for server in servers:
                row = session.get(Server, server.id)
                if row is None or row.deleted_at is not None or row.status not in SETTLED:
                    continue
                if row.id in busy:
                    continue
                inst = instances.get((row.lxd_project, row.lxd_name))
                if row.member in self.offline:
                    findings += self._offline(session, row, messages[row.member or ""])
                elif unreachable(row) and inst is not None:
                    findings += self._back(session, row, inst)
                if inst is not None and inst.tag("server_id") == str(row.id):
                    findings += self._adopt(session, row, inst)
            if self.dry_run:
                session.rollback()  # findings only
        return findings

    def _member_states(
        self, hosts: list[HostMember], reported: dict[str, ClusterMemberInfo]
    ) -> list[Finding]:
        findings = []
        for host in hosts:
            member = reported.get(host.name)
            status = member.status if member else "Missing"  # removed from the cluster
            current = MemberState(host.state)
            want = observed_state(status, recorded=current)
            if want == current:
                continue
            target = f"host:{host.name}"
            if want not in TRANSITIONS[current]:
                detail = f"LXD says {status}; {current.value} cannot become {want.value}"
                findings.append(Finding("member", target, detail, False))
                continue
            if not self.dry_run:
                with session_scope(self.settings, immediate=True) as session:
                    row = session.get(HostMember, host.name)
                    if row is not None:
                        row.state, row.updated_at = want.value, utcnow()
                        session.add(row)
            detail = f"LXD says {status}: {current.value} -> {want.value}"
            log.warning("cluster member state", extra={"host": host.name, "detail": detail})
            findings.append(Finding("member", target, detail, not self.dry_run))
        return findings

    def _offline(self, session: Session, row: Server, message: str) -> list[Finding]:
        if unreachable(row):
            return []
        detail = _offline_detail(row.member or "", message)
        before = row.status
        row.status, row.status_detail = ServerState.UNKNOWN, detail
        session.add(row)
        record_in(
            session,
            server=row,
            type=EventType.MEMBER_OFFLINE,
            severity="warning",
            message=detail,
            details={"member": row.member, "status_before": before},
        )
        return [
            Finding("member_offline", f"server:{row.id}", f"{before} -> unknown", not self.dry_run)
        ]

    def _back(self, session: Session, row: Server, inst: InstanceInfo) -> list[Finding]:
        status = STATUS_FROM_LXD.get(inst.status, ServerState.UNKNOWN)
        row.status, row.status_detail = status, None
        session.add(row)
        message = f"cluster member {row.member} answers again; the server is {status}"
        record_in(
            session,
            server=row,
            type=EventType.MEMBER_ONLINE,
            message=message,
            details={"member": row.member, "status": status.value},
        )
        return [
            Finding("member_online", f"server:{row.id}", f"unknown -> {status}", not self.dry_run)
        ]

    def _adopt(self, session: Session, row: Server, inst: InstanceInfo) -> list[Finding]:
        if not inst.clustered or inst.location == row.member:
            return []
        before, row.member = row.member, inst.location
        session.add(row)
        message = f"the server is on cluster member {inst.location} (recorded: {before})"
        record_in(
            session,
            server=row,
            type=EventType.MEMBER_CHANGED,
            message=message,
            details={"member": inst.location, "member_before": before},
        )
        return [Finding("adopted", f"server:{row.id}", message, not self.dry_run)]
