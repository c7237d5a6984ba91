"""Delete and rebuild protection flags (no action: they change at once)."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.services.servers.queries import live_server

__all__ = ["change_protection"]


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
