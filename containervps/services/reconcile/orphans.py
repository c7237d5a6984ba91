"""Tagged LXD objects whose server is gone: instances (after a grace period) and disk pools.

Untagged objects are never touched.
"""

from __future__ import annotations

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Orphan, Server, utcnow
from containervps.lxd import InstanceInfo, Lxd, pool_owner
from containervps.services.reconcile.findings import Finding
from containervps.services.servers import disks

__all__ = ["OrphanReaper"]

# A log directory is swept once unchanged this long: a create that began after the pass listed
# the instances makes its directory after the listing, and is never that old.
LOG_GRACE_S = 300.0


class OrphanReaper:
    """One pass over tagged objects without a live server (``dry_run``: report only)."""

    def __init__(self, settings: Settings, lxd: Lxd, *, dry_run: bool) -> None:
        self.settings = settings
        self.lxd = lxd
        self.dry_run = dry_run

    def instances(self, instances: dict[tuple[str, str], InstanceInfo]) -> list[Finding]:
        """Tagged instances whose server is gone: reported, deleted after the grace period."""
        dry_run = self.dry_run
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

    def disks(
        self, instances: dict[tuple[str, str], InstanceInfo], *, projects: set[str]
    ) -> list[Finding]:
        """Delete tagged server pools with no live server and no instance (no data is left)."""
        dry_run = self.dry_run
        with session_scope(self.settings) as session:
            live = {
                disks.pool_name(s)
                for s in session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all()
            }
        findings = []
        for pool in self.lxd.host.list_pools():
            owner = pool_owner(pool.name)
            server_id = pool.config.get(disks.TAG)
            if owner is None or owner[0] not in projects or server_id is None or pool.name in live:
                continue
            project, name = owner
            if (project, name) in instances:
                continue  # an orphan instance still uses it: deleted with it after the grace
            target = f"pool:{pool.name}"
            if not dry_run:
                self.lxd.host.delete_pool(pool.name)
            findings.append(
                Finding("orphan_disk", target, f"server {server_id} is gone", not dry_run)
            )
        return findings

    def logs(
        self, instances: dict[tuple[str, str], InstanceInfo], *, owned: set[str]
    ) -> list[Finding]:
        """Remove the log directories LXD left of deleted instances of tenant projects (live
        or deleted: ``owned`` and the tenant prefix), once unchanged for LOG_GRACE_S."""
        prefix = self.settings.tenant_project_prefix
        logs = self.lxd.instances.logs
        find = logs.stale if self.dry_run else logs.sweep
        gone = find(
            owned=lambda project: project in owned or project.startswith(prefix),
            instances=set(instances),
            min_age=LOG_GRACE_S,
        )
        return [
            Finding("orphan_log", f"log:{project}/{name}", "its instance is gone", not self.dry_run)
            for project, name in gone
        ]
