"""The reconciler: makes SQLite and LXD agree again after crashes and drift.

It finishes or rolls back actions whose process died, retries pending rollbacks, marks servers
whose container vanished, corrects power-state drift, and reports tagged orphans (deleting
them only after a grace period). Untagged LXD objects are never touched. On a cluster it
follows the members' states and adopts servers found on another member (members.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Quota, Server, Tenant, utcnow
from containervps.errors import ContainerVpsError
from containervps.lxd import InstanceInfo, Lxd
from containervps.services.actions.commands import ActionStatus
from containervps.services.actions.runner import run_action
from containervps.services.actions.store import runner_alive, this_runner
from containervps.services.cluster import members, routes
from containervps.services.firewalls import enforce
from containervps.services.metering import watch
from containervps.services.metering.allowance import standings
from containervps.services.reconcile.findings import Finding
from containervps.services.reconcile.members import MemberPass
from containervps.services.reconcile.orphans import OrphanReaper
from containervps.services.servers import bandwidth, egress, egress_shaping, ssh_forwards
from containervps.services.servers.limits import instance_limits
from containervps.services.servers.states import SETTLED, STATUS_FROM_LXD, ServerState
from containervps.services.servers.teardown import rollback_create
from containervps.services.tenancy.projects import ensure_project, project_config, tenant_projects

log = logging.getLogger(__name__)

__all__ = ["Finding", "Reconciler"]


class Reconciler:
    """One pass at a time; ``submit(action_id, resume=True)`` hands resumed actions to a
    worker instead of running them inline."""

    def __init__(
        self,
        settings: Settings,
        lxd: Lxd,
        *,
        busy: Callable[[], set[int]] | None = None,
        submit: Callable[..., object] | None = None,
    ) -> None:
        self.settings = settings
        self.lxd = lxd
        self.busy = busy or set
        self.submit = submit
        self.offline: frozenset[str] = frozenset()  # cluster members LXD cannot reach

    def run(self, *, dry_run: bool = False) -> list[Finding]:
        """One full pass; with ``dry_run`` nothing changes and findings say what would."""
        findings = self._interrupted(dry_run)
        findings += self._pending_rollbacks(dry_run)
        seen_at = utcnow()  # before LXD is asked: an action started after it may explain drift
        instances = self._instances()
        # Members first: the rest of the pass leaves the servers of unreachable members alone.
        member_pass = MemberPass(self.settings, self.lxd, dry_run=dry_run)
        findings += member_pass.run(instances, self._idle_servers())
        self.offline = member_pass.offline
        # Proxy devices of older versions go before their projects are told to block them.
        findings += self._old_ssh_devices(instances, dry_run)
        findings += self._project_configs(dry_run)
        findings += self._ssh_forwards(dry_run)
        findings += self._member_routes(dry_run)
        findings += self._net_filter(dry_run)
        findings += self._drift(instances, dry_run, seen_at=seen_at)
        findings += self._host_limits(instances, dry_run)
        findings += self._egress(instances, dry_run)
        reaper = OrphanReaper(self.settings, self.lxd, dry_run=dry_run)
        findings += reaper.instances(instances)
        findings += reaper.disks(instances, projects=self._projects())
        if not members.any_recorded(self.settings):  # a member keeps its logs on its machine
            findings += reaper.logs(instances, owned=self._tenant_projects())
        for f in findings:
            log.info("reconcile", extra={"kind": f.kind, "target": f.target, "applied": f.applied})
        return findings

    # --- actions whose process died -------------------------------------------------------
    def _interrupted(self, dry_run: bool) -> list[Finding]:
        with session_scope(self.settings) as session:
            running = session.exec(
                select(Action).where(Action.status == ActionStatus.RUNNING)
            ).all()
        busy = self.busy()
        stale = [a for a in running if a.id not in busy and not runner_alive(a.runner)]
        findings = []
        for action in stale:
            assert action.id is not None
            target = f"action:{action.id}"
            what = f"{action.command} of server {action.server_id} interrupted"
            if dry_run:
                findings.append(
                    Finding("interrupted_action", target, f"{what}; would resume", False)
                )
                continue
            if not self._claim(action):
                continue
            if self.submit is not None:
                # resume: the runner must expect parts done (a container made, a safety snapshot)
                self.submit(action.id, resume=True)
                findings.append(Finding("interrupted_action", target, f"{what}; resumed", True))
                continue
            done = run_action(self.settings, action.id, lxd=self.lxd, resume=True)
            outcome = (
                "finished"
                if done.status == ActionStatus.SUCCESS
                else f"rolled back ({done.error_message})"
            )
            findings.append(Finding("interrupted_action", target, f"{what}; {outcome}", True))
        return findings

    def _claim(self, action: Action) -> bool:
        """Take over a dead runner's action (compare-and-set, so only one process does)."""
        with session_scope(self.settings, immediate=True) as session:
            row = session.get(Action, action.id)
            if row is None or row.status != ActionStatus.RUNNING or row.runner != action.runner:
                return False
            row.runner = this_runner()
            session.add(row)
            return True

    def _pending_rollbacks(self, dry_run: bool) -> list[Finding]:
        with session_scope(self.settings) as session:
            rows = session.exec(
                select(Server).where(
                    col(Server.deleted_at).is_(None),
                    Server.status == ServerState.ERROR,
                    col(Server.status_detail).startswith("rollback pending"),
                )
            ).all()
        findings = []
        for server in rows:
            target = f"server:{server.id}"
            if dry_run:
                findings.append(
                    Finding("rollback", target, "failed create; would roll back", False)
                )
                continue
            ok = rollback_create(self.settings, self.lxd, server, reason=server.status_detail or "")
            findings.append(Finding("rollback", target, "failed create rolled back", ok))
        return findings

    def _project_configs(self, dry_run: bool) -> list[Finding]:
        """Tenant projects missing keys this version needs (e.g. after an upgrade) get them."""
        with session_scope(self.settings) as session:
            rows = session.exec(
                select(Tenant, Quota)
                .join(Quota, col(Quota.tenant_id) == col(Tenant.id))
                .where(col(Tenant.deleted_at).is_(None))
            ).all()
        findings = []
        listed = self.lxd.host.list_projects()
        for tenant, quota in rows:
            assert tenant.id is not None
            wanted = project_config(tenant.id, quota, network=self.settings.bridge)
            # A missing project is recreated by the next create that needs it.
            for project in tenant_projects(self.lxd, tenant.lxd_project, listed=listed):
                current = self.lxd.host.get_project(project) or {}
                if all(current.get(k) == v for k, v in wanted.items()):
                    continue
                if not dry_run:
                    ensure_project(
                        self.settings, self.lxd, tenant_id=tenant.id, project=project, quota=quota
                    )
                target = f"tenant:{tenant.id}"
                findings.append(
                    Finding("project_config", target, f"{project} config updated", not dry_run)
                )
        return findings

    def _old_ssh_devices(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        """Servers of older versions reached SSH through an LXD proxy device named ``ssh``."""
        findings = []
        for (project, name), inst in instances.items():
            if inst.tag("server_id") is None or inst.devices.get("ssh", {}).get("type") != "proxy":
                continue
            if not dry_run:
                self.lxd.instances.remove_device(name=name, project=project, device="ssh")
            target = f"server:{inst.tag('server_id')}"
            detail = "SSH proxy device replaced by the platform's forward"
            findings.append(Finding("ssh_forward", target, detail, not dry_run))
        return findings

    def _ssh_forwards(self, dry_run: bool) -> list[Finding]:
        """The kernel's SSH forwards are the database's (lost on a host reboot, for example)."""
        wanted, held = ssh_forwards.wanted(self.settings), ssh_forwards.forwards(self.settings)
        if held == wanted:
            return []
        if not dry_run:
            ssh_forwards.sync(self.settings)
        drift = len(set((held or {}).items()) ^ set(wanted.items()))
        detail = "table missing" if held is None else f"{drift} forwards differed"
        return [Finding("ssh_forward", "host", f"{detail}; reloaded", not dry_run)]

    def _member_routes(self, dry_run: bool) -> list[Finding]:
        """The host's routes to servers on members are the database's (lost on a reboot, or
        left behind by a server moved or deleted while a sync failed)."""
        want, have = routes.wanted(self.settings), routes.held(self.settings)
        if want == have:
            return []
        if not dry_run:
            routes.sync(self.settings)
        drift = len(set(have.items()) ^ set(want.items()))
        return [Finding("member_route", "host", f"{drift} routes differed; synced", not dry_run)]

    def _net_filter(self, dry_run: bool) -> list[Finding]:
        """The firewall and isolation table is rebuilt from the database every pass (one nft
        transaction): a lost table or a change made while a sync failed comes back."""
        missing = not enforce.present(self.settings)
        if not dry_run:
            enforce.sync(self.settings)
        if not missing:
            return []
        return [Finding("net_filter", "host", "filter table missing; rebuilt", not dry_run)]

    # --- LXD view ---------------------------------------------------------------------------
    def _tenant_projects(self) -> set[str]:
        """The LXD projects of every tenant ever recorded (deleted ones too)."""
        with session_scope(self.settings) as session:
            return set(session.exec(select(Tenant.lxd_project)).all())

    def _projects(self) -> set[str]:
        known = self._tenant_projects()
        prefix = self.settings.tenant_project_prefix
        live = set(self.lxd.host.list_projects())
        return (known & live) | {p for p in live if p.startswith(prefix)}

    def _instances(self) -> dict[tuple[str, str], InstanceInfo]:
        """Instances of tenant projects, from one listing of every project."""
        projects = self._projects()
        return {
            (inst.project, inst.name): inst
            for inst in self.lxd.instances.everywhere()
            if inst.project in projects
        }

    def _idle_servers(self) -> list[Server]:
        """Live servers with no action running on them."""
        with session_scope(self.settings) as session:
            busy = select(Action.server_id).where(
                Action.status == ActionStatus.RUNNING, col(Action.server_id).is_not(None)
            )
            query = select(Server).where(
                col(Server.deleted_at).is_(None), col(Server.id).not_in(busy)
            )
            return list(session.exec(query).all())

    def _drift(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool, *, seen_at: datetime
    ) -> list[Finding]:
        findings = []
        for server in self._idle_servers():
            if server.status not in SETTLED or server.member in self.offline:
                continue  # an unreachable member's instances are there, only not listed
            inst = instances.get((server.lxd_project, server.lxd_name))
            if inst is None or inst.tag("server_id") != str(server.id):
                if server.status != ServerState.MISSING:
                    findings.append(
                        self._set(
                            server, ServerState.MISSING, "container vanished", dry_run, "vanished"
                        )
                    )
                continue
            want = STATUS_FROM_LXD.get(inst.status, ServerState.UNKNOWN)
            if want == ServerState.OFF and server.status == ServerState.RUNNING:
                findings += self._stopped(server, dry_run, seen_at=seen_at)
            elif want != server.status:
                detail = f"LXD says {inst.status}, database said {server.status}"
                findings.append(self._set(server, want, detail, dry_run, "drift"))
            if want == ServerState.RUNNING and not server.ipv4 and not dry_run:
                self._refresh_ipv4(server)
        return findings

    def _host_limits(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        """Disk bandwidth in the cgroups of running servers: a reboot from inside (or an
        action whose process died) leaves a new cgroup without it."""
        findings = []
        for server in self._idle_servers():
            inst = instances.get((server.lxd_project, server.lxd_name))
            if inst is None or inst.status != "Running":
                continue
            if inst.tag("server_id") != str(server.id) or dry_run:
                continue
            pool = str(inst.devices.get("root", {}).get("pool") or self.settings.storage_pool)
            target = f"server:{server.id}"
            try:
                if self._cpu_weight(server, inst):
                    detail = "CPU weight per vCPU set (servers made before it had one)"
                    findings.append(Finding("host_limits", target, detail, True))
                if bandwidth.apply(self.settings, self.lxd, server, pool=pool):
                    detail = "disk bandwidth limits written into its cgroup"
                    findings.append(Finding("host_limits", target, detail, True))
            except (ContainerVpsError, OSError, ValueError) as exc:
                log.warning("host limits", extra={"server": server.id, "error": str(exc)})
        return findings

    def _cpu_weight(self, server: Server, inst: InstanceInfo) -> bool:
        """Servers made before vCPUs had a weight get limits.cpu.allowance (applied live)."""
        key = "limits.cpu.allowance"
        wanted = instance_limits(server.limits, pool="", network="")[0][key]
        if inst.config.get(key) == wanted:
            return False
        self.lxd.instances.update(
            name=server.lxd_name, project=server.lxd_project, config={key: wanted}
        )
        return True

    def _stopped(self, server: Server, dry_run: bool, *, seen_at: datetime) -> list[Finding]:
        """Running in the database, stopped in LXD, no action on it: stopped from inside."""
        target = f"server:{server.id}"
        if dry_run:
            return [Finding("drift", target, "stopped without a stop asked for; would mark", False)]
        detail = watch.stopped_unexpectedly(self.settings, server=server, seen_at=seen_at)
        return [] if detail is None else [Finding("drift", target, f"{detail} -> off", True)]

    def _egress(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        """Each running server's egress limit held at its due rate (a guest-initiated reboot
        makes a new veth without a redirect); IFBs of instances that no longer run removed."""
        with session_scope(self.settings) as session:
            servers = session.exec(
                select(Server).where(
                    col(Server.deleted_at).is_(None), col(Server.status).in_(SETTLED)
                )
            ).all()
        throttle = standings(self.settings)
        findings, wanted = [], set()
        for server in servers:
            inst = instances.get((server.lxd_project, server.lxd_name))
            if inst is None or inst.tag("server_id") != str(server.id):
                continue
            if inst.status == "Running":
                wanted.add(egress.ifb_of(server))
            if dry_run:
                continue
            st = throttle.get(server.id or 0)
            try:
                held = egress.hold(
                    self.settings, self.lxd, server, throttled=bool(st and st.throttled), inst=inst
                )
            except ContainerVpsError as exc:
                findings.append(
                    Finding("egress", f"server:{server.id}", f"not held: {exc.one_line()}", False)
                )
                continue
            if held.changed:
                detail = f"egress held at {held.mbit} Mbit/s ({held.mechanism})"
                if held.mbit is None:
                    detail = "egress shaping of a stopped server removed"
                findings.append(Finding("egress", f"server:{server.id}", detail, True))
        findings += self._stray_ifbs(instances, wanted, dry_run)
        return findings

    def _stray_ifbs(
        self, instances: dict[tuple[str, str], InstanceInfo], wanted: set[str], dry_run: bool
    ) -> list[Finding]:
        """IFBs this platform made for instances that are gone or stopped (another database on
        the same host keeps the ones of instances that still run)."""
        findings = []
        ours, live = self._projects(), set(self.lxd.host.list_projects())
        for device, owner in egress_shaping.ifbs().items():
            project, _, name = owner.partition("/")
            if device in wanted:
                continue
            if project in ours:
                inst = instances.get((project, name))
                if inst is not None and inst.status == "Running":
                    continue  # not a server of this database's, but alive
            elif project in live:
                continue  # another platform database's project on this host
            if not dry_run:
                egress_shaping.remove(ifb=device)
            detail = f"egress IFB of {owner} (not running) removed"
            findings.append(Finding("egress", f"ifb:{device}", detail, not dry_run))
        return findings

    def _set(self, server: Server, status: str, detail: str, dry_run: bool, kind: str) -> Finding:
        if not dry_run:
            with session_scope(self.settings, immediate=True) as session:
                row = session.get(Server, server.id)
                if row is not None:
                    row.status = status
                    row.status_detail = (
                        detail if status in (ServerState.MISSING, ServerState.UNKNOWN) else None
                    )
                    session.add(row)
        return Finding(kind, f"server:{server.id}", f"{detail} -> {status}", not dry_run)

    def _refresh_ipv4(self, server: Server) -> None:
        try:
            state = self.lxd.instances.state(name=server.lxd_name, project=server.lxd_project)
        except ContainerVpsError:
            return
        if state.ipv4:
            with session_scope(self.settings, immediate=True) as session:
                row = session.get(Server, server.id)
                if row is not None:
                    row.ipv4 = state.ipv4[0]
                    session.add(row)
