"""Changing a server in place: rebuild from an image, resize to a plan, protection flags."""

from __future__ import annotations

from collections.abc import Callable

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Image, Server
from containervps.errors import Conflict, InvalidInput, LxdNotFound
from containervps.lxd import Lxd
from containervps.services import access, provision
from containervps.services.actions import PASSWORD_HASH, finish, set_progress
from containervps.services.idempotency import Accepted, accept, replay, request_hash
from containervps.services.resize import request_resize, run_resize
from containervps.services.servers import ensure_idle, live_server, raise_protected
from containervps.services.snapshots import forget_snapshots, run_restore

__all__ = ["WORK", "change_protection", "request_rebuild", "request_resize"]


def request_rebuild(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    image: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a rebuild action: same id, name, port, plan and keys; a fresh disk from ``image``."""
    rhash = request_hash({"c": "rebuild", "s": server_id, "i": image})
    with session_scope(settings) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        needs_password = not server.ssh_keys
    password, password_hash = access.new_root_password(settings) if needs_password else (None, None)
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        earlier = replay(
            session, tenant_id=server.tenant_id, key=idempotency_key, request_hash=rhash
        )
        if earlier:
            return earlier
        ensure_idle(session, server_id)
        if server.rebuild_protection:
            raise_protected(server_id, "rebuild")
        if server.status in ("missing", "error"):
            raise Conflict(f"server {server_id} is {server.status}", resolution="delete it")
        if session.get(Image, image) is None:
            raise InvalidInput(
                f"unknown image {image!r}", details={"field": "image", "value": image[:100]}
            )
        server.status = "rebuilding"
        session.add(server)
        accepted = accept(
            session,
            server,
            "rebuild_server",
            request_id=request_id,
            key=idempotency_key,
            request_hash=rhash,
            params={"image": image, **({PASSWORD_HASH: password_hash} if password_hash else {})},
            root_password=password,
        )
    return accepted


def change_protection(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    delete: bool | None = None,
    rebuild: bool | None = None,
) -> Server:
    """Turn delete and/or rebuild protection on or off."""
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        if delete is not None:
            server.delete_protection = delete
        if rebuild is not None:
            server.rebuild_protection = rebuild
        session.add(server)
        return server


def _rebuild(settings: Settings, lxd: Lxd, action: Action, server: Server) -> Action:
    assert action.id is not None
    name, project, image = server.lxd_name, server.lxd_project, action.params["image"]
    lxd.operations.wait_idle(name=name, project=project)
    try:
        current = lxd.instances.get(name=name, project=project)
    except LxdNotFound:
        current = None
    if current is not None:
        if current.tag("server_id") != str(server.id):
            raise Conflict(f"LXD instance {name} in {project} is not this server's")
        lxd.instances.delete(name=name, project=project, force=True)
    assert server.id is not None
    forget_snapshots(settings, server.id)  # they went with the old disk
    set_progress(settings, action.id, 30)
    status = provision.create_instance(settings, lxd, server, action_id=action.id, image=image)
    set_progress(settings, action.id, 70)
    server_update = provision.bring_up(settings, lxd, server, action, status=status)
    return finish(settings, action.id, server_update={**server_update, "image": image})


WORK: dict[str, Callable[[Settings, Lxd, Action, Server], Action]] = {
    "rebuild_server": _rebuild,
    "resize_server": run_resize,
    "restore_snapshot": run_restore,
}
