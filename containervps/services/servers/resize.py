"""Resizing a server to another plan: quota and capacity first, then live LXD limits."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Plan, Quota, Server
from containervps.errors import Conflict, ContainerVpsError, InvalidInput
from containervps.faults import checkpoint
from containervps.lxd import Lxd
from containervps.services.actions.commands import Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish
from containervps.services.capacity import admission
from containervps.services.cluster import placement
from containervps.services.host.capabilities import egress_support
from containervps.services.servers import boundaries, disks, on_member, tmpfs
from containervps.services.servers.bandwidth import bandwidth_support
from containervps.services.servers.limits import RESERVATION, instance_limits, reserve
from containervps.services.servers.queries import live_server
from containervps.services.tenancy.plans import get_plan

log = logging.getLogger(__name__)

__all__ = ["request_resize", "run"]

# A shrink keeps this share of the new disk free. btrfs cannot take back a quota set below
# what is used: even raising it again then fails with EDQUOT (measured on LXD 5.0.2).
SHRINK_HEADROOM = 0.10


def _plan_disk_gib(settings: Settings, plan: str) -> int | None:
    with session_scope(settings) as session:
        row = session.get(Plan, plan)
        return row.disk_gib if row else None


def _used_before_shrink(settings: Settings, lxd: Lxd, *, server: Server, plan: str) -> int:
    """Bytes used on the disk when the new plan's is smaller (read outside the write lock)."""
    new_disk = _plan_disk_gib(settings, plan)
    if new_disk is None or new_disk >= server.disk_gib:
        return 0
    return disks.disk_used_bytes(lxd, server)


def _check_fits(used: int, disk_gib: int) -> None:
    if used > disk_gib * 2**30 * (1 - SHRINK_HEADROOM):
        raise Conflict(
            f"the disk cannot shrink to {disk_gib} GiB: {used / 2**30:.2f} GiB are used "
            f"and {SHRINK_HEADROOM:.0%} must stay free",
            details={"used_bytes": used, "requested_bytes": disk_gib * 2**30},
            resolution="free space inside the server or pick a plan with a larger disk",
        )


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
    with session_scope(settings) as session:
        current = live_server(session, server_id=server_id, tenant_id=tenant_id)
    # This host's facts matter only to a server on it (a member's are in the database).
    host = None if current.member else admission.host_capacity(settings, lxd)
    egress_here = None if current.member else egress_support(settings, lxd)
    used = _used_before_shrink(settings, lxd, server=current, plan=plan)
    request = ActionRequest(
        command=Command.RESIZE_SERVER,
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": "resize", "s": server_id, "p": plan},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        assert server is not None
        new = get_plan(session, plan)
        if new.name == server.plan:
            raise InvalidInput(
                f"server {server_id} already has plan {plan!r}",
                details={"field": "plan", "value": plan},
            )
        _check_fits(used, new.disk_gib)
        quota = session.get(Quota, server.tenant_id)
        assert quota is not None
        want = admission.reservation(new, servers=0).minus(admission.reservation(server, servers=0))
        want_iops = admission.Iops.of(new).minus(admission.Iops.of(server))
        admission.admit_quota(session, tenant_id=server.tenant_id, quota=quota, want=want)
        if server.member:  # its member's room, not this host's
            placement.admit_on_member(
                session, settings, member=server.member, want=want, want_iops=want_iops
            )
            egress = on_member.egress_on_member(server.member)
            bandwidth = on_member.bandwidth_on_member(server.member)
        else:
            assert host is not None and egress_here is not None  # a server never leaves a member
            admission.admit_host(session, capacity=host, want=want, want_iops=want_iops)
            egress, bandwidth = egress_here, bandwidth_support(settings)
        before: dict[str, Any] = {key: getattr(server, key) for key in RESERVATION}
        reserve(
            server,
            new,
            egress=egress,
            bandwidth=bandwidth,
            throttle_mbit=settings.transfer_throttle_mbit or None,
        )
        return Prepared(params={"from": before, "to": new.name})

    return submit(settings, request, prepare)


def _apply(settings: Settings, lxd: Lxd, server: Server, limits: dict[str, Any]) -> None:
    name, project = server.lxd_name, server.lxd_project
    # The root disk stays where it is (servers made before pools per server use the shared one).
    current = lxd.instances.get(name=name, project=project)
    pool = current.devices["root"]["pool"]
    config, devices = instance_limits(
        limits, pool=pool, network=settings.bridge, ipv4=server.ipv4, ipv6=server.ipv6
    )
    disks.resize_disk(lxd, server, int(limits["disk"]["value"]))
    cpu = config.pop("limits.cpu")
    # PATCH merges by device name: the SSH proxy device stays as it is. limits.cpu goes last
    # and alone: LXD 5.0.2 rebalances CPU sets from the previous value (nproc inside lags one
    # change behind) when limits.cpu changes together with memory or devices (measured).
    lxd.instances.update(name=name, project=project, config=config)
    checkpoint(settings, "resize.apply")
    lxd.instances.update(name=name, project=project, devices=devices)
    lxd.instances.update(name=name, project=project, config={"limits.cpu": cpu})
    if current.status == "Running":  # a stopped server sizes its tmpfs mounts at boot
        tmpfs.apply(lxd, server)


def run(job: Job) -> Action:
    """Apply the new plan's limits live; on failure put back the old limits and reservation."""
    settings, lxd, action, server = job.settings, job.lxd, job.action, job.server
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
        server.limits = before["limits"]
        boundaries.after(job)  # the old rate back on the veth LXD's update may have reset
        raise
    boundaries.after(job)  # LXD dropped the veth's redirect when it set the NIC's limits
    return finish(settings, job.action_id)
