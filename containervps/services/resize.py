"""Resizing a server to another plan: quota and capacity first, then live LXD limits."""

from __future__ import annotations

import logging
from typing import Any

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Plan, Quota, Server
from containervps.errors import Conflict, ContainerVpsError, InvalidInput
from containervps.lxd import Lxd
from containervps.services import capacity, server_disks
from containervps.services.actions import finish
from containervps.services.capabilities import egress_support
from containervps.services.idempotency import Accepted, accept, replay, request_hash
from containervps.services.plans import get_plan, instance_limits, plan_limits
from containervps.services.servers import ensure_idle, live_server

log = logging.getLogger(__name__)

__all__ = ["request_resize", "run_resize"]

RESERVATION = ("plan", "vcpus", "memory_mib", "disk_gib", "processes", "limits")
# A shrink keeps this share of the new disk free. btrfs cannot take back a quota set below
# what is used: even raising it again then fails with EDQUOT (measured on LXD 5.0.2).
SHRINK_HEADROOM = 0.10


def _plan_disk_gib(settings: Settings, plan: str) -> int | None:
    with session_scope(settings) as session:
        row = session.get(Plan, plan)
        return row.disk_gib if row else None


def request_resize(
    settings: Settings,
    lxd: Lxd,
    *,
    tenant_id: int | None,
    server_id: int,
    plan: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Admit a resize (quota, capacity, disk fit) and reserve the new size; LXD work runs later."""
    rhash = request_hash({"c": "resize", "s": server_id, "p": plan})
    host = capacity.host_capacity(settings, lxd)
    egress = egress_support(settings, lxd)
    with session_scope(settings) as session:
        current = live_server(session, server_id=server_id, tenant_id=tenant_id)
    shrinking = (new_disk := _plan_disk_gib(settings, plan)) is not None and (
        new_disk < current.disk_gib
    )
    # LXD calls go outside the write lock.
    used = server_disks.disk_used_bytes(lxd, current) if shrinking else 0
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        earlier = replay(
            session, tenant_id=server.tenant_id, key=idempotency_key, request_hash=rhash
        )
        if earlier:
            return earlier
        ensure_idle(session, server_id)
        if server.status in ("missing", "error"):
            raise Conflict(f"server {server_id} is {server.status}", resolution="delete it")
        new = get_plan(session, plan)
        if new.name == server.plan:
            raise InvalidInput(
                f"server {server_id} already has plan {plan!r}",
                details={"field": "plan", "value": plan},
            )
        if used > new.disk_gib * 2**30 * (1 - SHRINK_HEADROOM):
            raise Conflict(
                f"the disk cannot shrink to {new.disk_gib} GiB: {used / 2**30:.2f} GiB are used "
                f"and {SHRINK_HEADROOM:.0%} must stay free",
                details={"used_bytes": used, "requested_bytes": new.disk_gib * 2**30},
                resolution="free space inside the server or pick a plan with a larger disk",
            )
        quota = session.get(Quota, server.tenant_id)
        assert quota is not None
        capacity.admit(
            session,
            tenant_id=server.tenant_id,
            quota=quota,
            capacity=host,
            want=capacity.Request(
                vcpus=new.vcpus - server.vcpus,
                memory_mib=new.memory_mib - server.memory_mib,
                disk_gib=new.disk_gib - server.disk_gib,
                processes=new.max_processes - server.processes,
            ),
            new_servers=0,
        )
        before: dict[str, Any] = {key: getattr(server, key) for key in RESERVATION}
        server.plan, server.vcpus, server.memory_mib = new.name, new.vcpus, new.memory_mib
        server.disk_gib, server.processes = new.disk_gib, new.max_processes
        server.limits = plan_limits(
            new, egress_enforced=egress.enforced, egress_reason=egress.reason
        )
        session.add(server)
        return accept(
            session,
            server,
            "resize_server",
            request_id=request_id,
            key=idempotency_key,
            request_hash=rhash,
            params={"from": before, "to": new.name},
        )


def _apply(settings: Settings, lxd: Lxd, server: Server, limits: dict[str, Any]) -> None:
    name, project = server.lxd_name, server.lxd_project
    # The root disk stays where it is (servers made before pools per server use the shared one).
    pool = lxd.instances.get(name=name, project=project).devices["root"]["pool"]
    config, devices = instance_limits(limits, pool=pool, network=settings.bridge)
    server_disks.resize_disk(lxd, server, int(limits["disk"]["value"]))
    cpu = config.pop("limits.cpu")
    # PATCH merges by device name: the SSH proxy device stays as it is. limits.cpu goes last
    # and alone: LXD 5.0.2 rebalances CPU sets from the previous value (nproc inside lags one
    # change behind) when limits.cpu changes together with memory or devices (measured).
    lxd.instances.update(name=name, project=project, config=config)
    lxd.instances.update(name=name, project=project, devices=devices)
    lxd.instances.update(name=name, project=project, config={"limits.cpu": cpu})


def run_resize(settings: Settings, lxd: Lxd, action: Action, server: Server) -> Action:
    """Apply the new plan's limits live; on failure put back the old limits and reservation."""
    assert action.id is not None
    try:
        _apply(settings, lxd, server, server.limits)
    except ContainerVpsError:
        before = action.params["from"]
        with session_scope(settings, immediate=True) as session:
            row = session.get(Server, server.id)
            assert row is not None
            for key, value in before.items():
                setattr(row, key, value)
            session.add(row)
        try:
            _apply(settings, lxd, server, before["limits"])
        except ContainerVpsError as exc:
            log.warning("could not restore limits", extra={"server": server.id, "error": str(exc)})
        raise
    return finish(settings, action.id)
