"""Rebuild a server: same id, name, port, plan and keys; a fresh disk from an image."""

from __future__ import annotations

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Image, Server
from containervps.errors import Conflict, InvalidInput, LxdNotFound
from containervps.faults import checkpoint
from containervps.services.actions.commands import PASSWORD_HASH, Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish, set_progress
from containervps.services.servers import access, boundaries, provision
from containervps.services.servers.queries import live_server, raise_protected
from containervps.services.servers.snapshots import forget_snapshots

__all__ = ["request_rebuild", "run"]


def request_rebuild(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    image: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a rebuild action (a new root password when the server has no SSH keys)."""
    with session_scope(settings) as session:
        needs_password = not live_server(session, server_id=server_id, tenant_id=tenant_id).ssh_keys
    password, password_hash = access.new_root_password(settings) if needs_password else (None, None)
    request = ActionRequest(
        command=Command.REBUILD_SERVER,
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": "rebuild", "s": server_id, "i": image},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        assert server is not None
        if server.rebuild_protection:
            raise_protected(server_id, "rebuild")
        if session.get(Image, image) is None:
            raise InvalidInput(
                f"unknown image {image!r}", details={"field": "image", "value": image[:100]}
            )
        params = {"image": image, **({PASSWORD_HASH: password_hash} if password_hash else {})}
        return Prepared(params=params, root_password=password)

    return submit(settings, request, prepare)


def run(job: Job) -> Action:
    """Replace the container with a fresh one from the image, on the same disk pool."""
    name, project, image = job.server.lxd_name, job.server.lxd_project, job.action.params["image"]
    job.lxd.operations.wait_idle(name=name, project=project)
    try:
        current = job.lxd.instances.get(name=name, project=project)
    except LxdNotFound:
        current = None
    if current is not None:
        if current.tag("server_id") != str(job.server.id):
            raise Conflict(f"LXD instance {name} in {project} is not this server's")
        job.lxd.instances.delete(name=name, project=project, force=True)
    forget_snapshots(job.settings, job.server_id)  # they went with the old disk
    checkpoint(job.settings, "rebuild.after_delete")
    set_progress(job.settings, job.action_id, 30)
    status = provision.create_instance(job, image=image)
    set_progress(job.settings, job.action_id, 70)
    server_update = provision.bring_up(job, status=status)
    boundaries.after(job)
    return finish(job.settings, job.action_id, server_update={**server_update, "image": image})
