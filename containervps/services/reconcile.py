"""The reconciler: makes SQLite and LXD agree again after crashes and drift.

It finishes or rolls back actions whose process died, retries pending rollbacks, marks servers
whose container vanished, corrects power-state drift, and reports tagged orphans (deleting
them only after a grace period). Untagged LXD objects are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Orphan, Quota, Server, Tenant, utcnow
from containervps.errors import ContainerVpsError, LxdNotFound
from containervps.lxd import InstanceInfo, Lxd
from containervps.services import server_disks
from containervps.services.actions import runner_alive, this_runner
from containervps.services.lifecycle import STATUS_FROM_LXD, rollback_create, run_action
from containervps.services.tenants import ensure_project, project_config

log = logging.getLogger(__name__)

__all__ = ["Finding", "Reconciler"]

SETTLED = {"running", "off", "missing", "unknown", "starting", "stopping", "rebooting"}


@dataclass(frozen=True)
class Finding:
    kind: str  # interrupted_action | rollback | project_config | vanished | drift | orphan...
    target: str
    detail: str
    applied: bool


class Reconciler:
    """One pass at a time; ``submit`` hands resumed actions to a worker instead of inline."""

    def __init__(
        self,
        settings: Settings,
        lxd: Lxd,
        *,
        busy: Callable[[], set[int]] | None = None,
        submit: Callable[[int], object] | None = None,
    ) -> None:
        self.settings = settings
        self.lxd = lxd
        self.busy = busy or set
        self.submit = submit

    def run(self, *, dry_run: bool = False) -> list[Finding]:
        """One full pass; with ``dry_run`` nothing changes and findings say what would."""
        findings = self._interrupted(dry_run)
        findings += self._pending_rollbacks(dry_run)
        findings += self._project_configs(dry_run)
        instances = self._instances()
        findings += self._drift(instances, dry_run)
        findings += self._orphans(instances, dry_run)
        findings += self._orphan_disks(instances, dry_run)
        for f in findings:
            log.info("reconcile", extra={"kind": f.kind, "target": f.target, "applied": f.applied})
        return findings

    # --- actions whose process died -------------------------------------------------------
    def _interrupted(self, dry_run: bool) -> list[Finding]:
        with session_scope(self.settings) as session:
            running = session.exec(select(Action).where(Action.status == "running")).all()
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
                self.submit(action.id)
                findings.append(Finding("interrupted_action", target, f"{what}; resumed", True))
                continue
            done = run_action(self.settings, action.id, lxd=self.lxd, resume=True)
            outcome = (
                "finished" if done.status == "success" else f"rolled back ({done.error_message})"
            )
            findings.append(Finding("interrupted_action", target, f"{what}; {outcome}", True))
        return findings

    def _claim(self, action: Action) -> bool:
        """Take over a dead runner's action (compare-and-set, so only one process does)."""
        with session_scope(self.settings, immediate=True) as session:
            row = session.get(Action, action.id)
            if row is None or row.status != "running" or row.runner != action.runner:
                return False
            row.runner = this_runner()
            session.add(row)
            return True

    def _pending_rollbacks(self, dry_run: bool) -> list[Finding]:
        with session_scope(self.settings) as session:
            rows = session.exec(
                select(Server).where(
                    col(Server.deleted_at).is_(None),
                    Server.status == "error",
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
        for tenant, quota in rows:
            assert tenant.id is not None
            current = self.lxd.host.get_project(tenant.lxd_project)
            wanted = project_config(tenant.id, quota)
            if current is None or all(current.get(k) == v for k, v in wanted.items()):
                continue  # a missing project is recreated by the next create that needs it
            if not dry_run:
                ensure_project(
                    self.settings,
                    self.lxd,
                    tenant_id=tenant.id,
                    project=tenant.lxd_project,
                    quota=quota,
                )
            target = f"tenant:{tenant.id}"
            findings.append(
                Finding("project_config", target, "project config updated", not dry_run)
            )
        return findings

    # --- LXD view ---------------------------------------------------------------------------
    def _projects(self) -> set[str]:
        with session_scope(self.settings) as session:
            known = set(session.exec(select(Tenant.lxd_project)).all())
        prefix = self.settings.tenant_project_prefix
        live = set(self.lxd.host.list_projects())
        return (known & live) | {p for p in live if p.startswith(prefix)}

    def _instances(self) -> dict[tuple[str, str], InstanceInfo]:
        found = {}
        for project in sorted(self._projects()):
            try:
                for inst in self.lxd.instances.all(project=project):
                    found[(project, inst.name)] = inst
            except LxdNotFound:
                continue
        return found

    def _drift(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        with session_scope(self.settings) as session:
            busy_servers = set(
                session.exec(select(Action.server_id).where(Action.status == "running")).all()
            )
            servers = session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all()
        findings = []
        for server in servers:
            if server.id in busy_servers or server.status not in SETTLED:
                continue
            inst = instances.get((server.lxd_project, server.lxd_name))
            if inst is None or inst.tag("server_id") != str(server.id):
                if server.status != "missing":
                    findings.append(
                        self._set(server, "missing", "container vanished", dry_run, "vanished")
                    )
                continue
            want = STATUS_FROM_LXD.get(inst.status, "unknown")
            if want != server.status:
                detail = f"LXD says {inst.status}, database said {server.status}"
                findings.append(self._set(server, want, detail, dry_run, "drift"))
            if want == "running" and not server.ipv4 and not dry_run:
                self._refresh_ipv4(server)
        return findings

    def _set(self, server: Server, status: str, detail: str, dry_run: bool, kind: str) -> Finding:
        if not dry_run:
            with session_scope(self.settings, immediate=True) as session:
                row = session.get(Server, server.id)
                if row is not None:
                    row.status = status
                    row.status_detail = detail if status in ("missing", "unknown") else None
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

    # --- tagged instances without a live server -------------------------------------------
    def _orphans(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        with session_scope(self.settings) as session:
            live = {
                (s.lxd_project, s.lxd_name, str(s.id))
                for s in session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all()
            }
            seen = {(o.lxd_project, o.lxd_name): o for o in session.exec(select(Orphan)).all()}
        now = utcnow()
        findings, still = [], set()
        for (project, name), inst in instances.items():
            server_id = inst.tag("server_id")
            if server_id is None or (project, name, server_id) in live:
                continue  # untagged objects are never ours to touch
            still.add((project, name))
            first = seen[(project, name)].first_seen if (project, name) in seen else now
            age = (now - first).total_seconds()
            target = f"instance:{project}/{name}"
            if age >= self.settings.orphan_grace_seconds and not dry_run:
                self.lxd.instances.delete(name=name, project=project, force=True)
                findings.append(Finding("orphan_deleted", target, f"server {server_id} gone", True))
                still.discard((project, name))
                continue
            left = max(0.0, self.settings.orphan_grace_seconds - age)
            detail = f"tagged server {server_id} has no live row; deleted in {left:.0f}s"
            findings.append(Finding("orphan", target, detail, False))
            if not dry_run and (project, name) not in seen:
                with session_scope(self.settings, immediate=True) as session:
                    session.add(
                        Orphan(
                            lxd_project=project, lxd_name=name, server_id=server_id, first_seen=now
                        )
                    )
        if not dry_run:
            with session_scope(self.settings, immediate=True) as session:
                for key, row in seen.items():
                    if key not in still:
                        session.delete(session.get(Orphan, row.id))
        return findings

    # --- disk pools of servers that are gone ----------------------------------------------
    def _orphan_disks(
        self, instances: dict[tuple[str, str], InstanceInfo], dry_run: bool
    ) -> list[Finding]:
        """Delete tagged server pools with no live server and no instance (no data is left)."""
        projects = self._projects()
        with session_scope(self.settings) as session:
            live = {
                server_disks.pool_name(s)
                for s in session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all()
            }
        findings = []
        for pool in self.lxd.host.list_pools():
            project, _, name = pool.name.partition("_")
            server_id = pool.config.get(server_disks.TAG)
            if project not in projects or server_id is None or pool.name in live:
                continue
            if (project, name) in instances:
                continue  # an orphan instance still uses it: deleted with it after the grace
            target = f"pool:{pool.name}"
            if not dry_run:
                self.lxd.host.delete_pool(pool.name)
            findings.append(
                Finding("orphan_disk", target, f"server {server_id} is gone", not dry_run)
            )
        return findings
