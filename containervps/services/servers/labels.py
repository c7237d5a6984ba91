"""Changing a server's labels (firewalls select servers by them: the filter table follows)."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.services.firewalls import enforce
from containervps.services.servers.queries import live_server, validate_labels

__all__ = ["set_labels"]


def set_labels(
    settings: Settings, *, tenant_id: int | None, server_id: int, labels: dict[str, str]
) -> Server:
    """Replace the server's labels and rebuild the filter table (selectors may now match)."""
    validate_labels(labels)
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        server.labels = dict(labels)
        session.add(server)
    enforce.sync(settings)
    return server
