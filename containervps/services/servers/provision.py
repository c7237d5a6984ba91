"""Making a server's container: its disk, plan limits, SSH access and tags; then bringing it
up with its root password and address."""

from __future__ import annotations

import threading
from typing import Any

from containervps.db.engine import session_scope
from containervps.db.models import Quota, Server
from containervps.errors import LxdError
from containervps.services.actions.commands import PASSWORD_HASH
from containervps.services.actions.job import Job
from containervps.services.cluster import routes
from containervps.services.firewalls import enforce
from containervps.services.servers import access, addresses, disks, ssh_forwards
from containervps.services.servers.limits import instance_limits
from containervps.services.servers.states import ServerState
from containervps.services.tenancy import projects

__all__ = ["bring_up", "create_instance", "ensure_server_project"]


def create_instance(job: Job, *, image: str) -> str:
    """Create the tagged container on its own disk with the plan's limits and SSH access.

    Returns the container's LXD status.
    """
    settings, lxd, server = job.settings, job.lxd, job.server
    ensure_server_project(job)
    ipv4, ipv6 = _ensure_addresses(job)
    pool = disks.ensure_disk(settings, lxd, server)
    config, devices = instance_limits(
        server.limits, pool=pool, network=settings.bridge, ipv4=ipv4, ipv6=ipv6
    )
    if server.ssh_port:
        ssh_forwards.put(settings, port=server.ssh_port, ipv4=ipv4)
    if server.member:
        # its address routed to its member (the forward's target); a failed sync is logged
        # and repaired by the reconciler: the server itself is fine
        routes.refresh(settings)
    enforce.admit(settings, server.id)  # its firewall and isolation hold before it starts
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
        target=server.member,  # the member placement picked (None: a single host)
    )
    disks.drop_image_copies(lxd, server)
    access.install_access(lxd, server)
    return info.status


def _ensure_addresses(job: Job) -> tuple[str, str]:
    """The server's fixed IPv4 and IPv6 addresses; servers made before the platform owned
    addresses get them here (a rebuild)."""
    server = job.server
    if server.ipv4 and server.ipv6:
        return server.ipv4, server.ipv6
    with session_scope(job.settings, immediate=True) as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.ipv4 = row.ipv4 or addresses.allocate_ipv4(session, job.settings)
        row.ipv6 = row.ipv6 or addresses.allocate_ipv6(session, job.settings)
        session.add(row)
        server.ipv4, server.ipv6 = row.ipv4, row.ipv6
    return row.ipv4, row.ipv6


def bring_up(job: Job, *, status: str) -> dict[str, Any]:
    """Start the container unless running and set the root password the action holds; return
    the server fields to record (its address was fixed at create: no wait for DHCP).

    The action keeps only the crypt hash, and only until it finishes, so that work resumed
    after a crash still sets the password the tenant was shown.
    """
    lxd, server = job.lxd, job.server
    name, project = server.lxd_name, server.lxd_project
    if status != "Running":
        lxd.instances.set_state(name=name, project=project, action="start")
    password_hash = job.action.params.get(PASSWORD_HASH)
    if password_hash:
        access.set_root_password(lxd, server, password_hash)
    return {"status": ServerState.RUNNING, "status_detail": None}


_project_lock = threading.Lock()  # the first creates of a new group race to make its project


def ensure_server_project(job: Job) -> None:
    """Create the server's LXD project (one of its tenant's) if it is missing: a new group, or
    one deleted by hand."""
    server, lxd = job.server, job.lxd
    if lxd.host.get_project(server.lxd_project) is not None:
        return
    with session_scope(job.settings) as session:
        quota = session.get(Quota, server.tenant_id)
    assert quota is not None
    with _project_lock:
        if lxd.host.get_project(server.lxd_project) is not None:
            return  # another create of this process made it while we waited
        try:
            projects.ensure_project(
                job.settings,
                lxd,
                tenant_id=server.tenant_id,
                project=server.lxd_project,
                quota=quota,
            )
        except LxdError:
            if lxd.host.get_project(server.lxd_project) is None:
                raise  # not a race with another process: a real failure
