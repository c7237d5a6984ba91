"""Making a server's container: plan limits, the SSH port, tags, root access."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.errors import LxdError
from containervps.lxd import Lxd
from containervps.services import access, server_disks
from containervps.services.actions import PASSWORD_HASH
from containervps.services.plans import instance_limits

__all__ = ["create_instance", "start_with_password", "wait_ipv4"]


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


def start_with_password(lxd: Lxd, server: Server, action: Action, *, status: str) -> None:
    """Start the container unless running, then set the root password the action holds.

    The action keeps only the crypt hash, and only until it finishes, so that work resumed
    after a crash still sets the password the tenant was shown.
    """
    if status != "Running":
        lxd.instances.set_state(name=server.lxd_name, project=server.lxd_project, action="start")
    password_hash = action.params.get(PASSWORD_HASH)
    if password_hash:
        access.set_root_password(lxd, server, password_hash)


def wait_ipv4(settings: Settings, lxd: Lxd, server: Server) -> str | None:
    """The server's address once DHCP gave it one (None after the wait: the reconciler fills
    it in later)."""
    try:
        return lxd.instances.wait_for_ipv4(
            name=server.lxd_name, project=server.lxd_project, timeout=settings.ipv4_wait_seconds
        )
    except LxdError:
        return None
