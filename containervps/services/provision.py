"""Making a server's container: plan limits, the SSH port, tags, root access."""

from __future__ import annotations

from typing import Any

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.errors import LxdError
from containervps.lxd import Lxd
from containervps.services import access, server_disks
from containervps.services.actions import PASSWORD_HASH
from containervps.services.plans import instance_limits

__all__ = ["bring_up", "create_instance"]


def create_instance(
    settings: Settings, lxd: Lxd, server: Server, *, action_id: int, image: str
) -> str:
    """Create the tagged container on its own disk with the plan's limits and SSH access.

    Returns the container's LXD status.
    """
    pool = server_disks.ensure_disk(settings, lxd, server)
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
            "action_id": str(action_id),
        },
    )
    server_disks.drop_image_copies(lxd, server)
    access.install_access(lxd, server)
    return info.status


def bring_up(
    settings: Settings, lxd: Lxd, server: Server, action: Action, *, status: str
) -> dict[str, Any]:
    """Start the container unless running, set the root password the action holds, and wait
    for its address; return the server fields to record.

    The action keeps only the crypt hash, and only until it finishes, so that work resumed
    after a crash still sets the password the tenant was shown. No address after
    ``ipv4_wait_seconds``: the reconciler fills it in later.
    """
    name, project = server.lxd_name, server.lxd_project
    if status != "Running":
        lxd.instances.set_state(name=name, project=project, action="start")
    password_hash = action.params.get(PASSWORD_HASH)
    if password_hash:
        access.set_root_password(lxd, server, password_hash)
    try:
        ipv4: str | None = lxd.instances.wait_for_ipv4(
            name=name, project=project, timeout=settings.ipv4_wait_seconds
        )
    except LxdError:
        ipv4 = None
    return {"status": "running", "status_detail": None, "ipv4": ipv4}
