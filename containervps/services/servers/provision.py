"""Making a server's container: its disk, plan limits, SSH access and tags; then bringing it
up with its root password and address."""

from __future__ import annotations

from typing import Any

from containervps.db.engine import session_scope
from containervps.db.models import Quota
from containervps.errors import LxdError
from containervps.services.actions.commands import PASSWORD_HASH
from containervps.services.actions.job import Job
from containervps.services.servers import access, disks
from containervps.services.servers.limits import instance_limits
from containervps.services.servers.states import ServerState
from containervps.services.tenancy.projects import ensure_project

__all__ = ["bring_up", "create_instance", "ensure_tenant_project"]


def create_instance(job: Job, *, image: str) -> str:
    """Create the tagged container on its own disk with the plan's limits and SSH access.

    Returns the container's LXD status.
    """
    settings, lxd, server = job.settings, job.lxd, job.server
    pool = disks.ensure_disk(settings, lxd, server)
    config, devices = instance_limits(server.limits, pool=pool, network=settings.bridge)
    if server.ssh_port:
        devices["ssh"] = access.ssh_proxy_device(settings, server.ssh_port)
    info = lxd.instances.create(
        name=server.lxd_name,
        project=server.lxd_project,
        image=image,
        profiles=["default"],
        config=config,
        devices=devices,
        tags={
            "server_id": str(server.id),
            "tenant_id": str(server.tenant_id),
            "action_id": str(job.action_id),
        },
    )
    disks.drop_image_copies(lxd, server)
    access.install_access(lxd, server)
    return info.status


def bring_up(job: Job, *, status: str) -> dict[str, Any]:
    """Start the container unless running, set the root password the action holds, and wait
    for its address; return the server fields to record.

    The action keeps only the crypt hash, and only until it finishes, so that work resumed
    after a crash still sets the password the tenant was shown. No address after
    ``ipv4_wait_seconds``: the reconciler fills it in later.
    """
    lxd, server = job.lxd, job.server
    name, project = server.lxd_name, server.lxd_project
    if status != "Running":
        lxd.instances.set_state(name=name, project=project, action="start")
    password_hash = job.action.params.get(PASSWORD_HASH)
    if password_hash:
        access.set_root_password(lxd, server, password_hash)
    try:
        ipv4: str | None = lxd.instances.wait_for_ipv4(
            name=name, project=project, timeout=job.settings.ipv4_wait_seconds
        )
    except LxdError:
        ipv4 = None
    return {"status": ServerState.RUNNING, "status_detail": None, "ipv4": ipv4}


def ensure_tenant_project(job: Job) -> None:
    """Recreate the tenant's LXD project if it went missing (deleted by hand)."""
    server = job.server
    if job.lxd.host.get_project(server.lxd_project) is not None:
        return
    with session_scope(job.settings) as session:
        quota = session.get(Quota, server.tenant_id)
    assert quota is not None
    ensure_project(
        job.settings, job.lxd, tenant_id=server.tenant_id, project=server.lxd_project, quota=quota
    )
