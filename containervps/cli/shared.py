"""What the `server` and `snapshot` commands share: finding a server, acting as admin with a
spinner, and printing a server as the API does."""

from __future__ import annotations

from typing import Any

import typer

from containervps.cli import common
from containervps.db.models import Action, Server
from containervps.errors import ContainerVpsError
from containervps.schemas.server import ServerAdmin
from containervps.services.actions.runner import run_action
from containervps.services.servers import queries
from containervps.services.tenancy import tenants

__all__ = ["TenantOption", "find", "run_here", "server_json", "show_after", "tenant_id"]

TenantOption = typer.Option(None, "--tenant", "-t", help="Tenant id or name.")


def tenant_id(tenant: str | None) -> int | None:
    return tenants.resolve(common.settings(), tenant) if tenant else None


def find(server: str, tenant: str | None) -> Server:
    """A server by id, or by name (within --tenant when names repeat)."""
    return queries.find_server(common.settings(), ref=server, tenant_id=tenant_id(tenant))


def server_json(server: Server) -> dict[str, Any]:
    """The same JSON the admin API prints for the server (the member it runs on too)."""
    ssh_host = common.settings().ssh_address
    return ServerAdmin.of_admin(server, ssh_host=ssh_host).model_dump(mode="json")


def run_here(action: Action, *, what: str) -> Action:
    """Do the LXD work here, in this process, with a spinner."""
    assert action.id is not None
    with common.console.status(f"{what}..."):
        done = run_action(common.settings(), action.id, lxd=common.lxd())
    if done.status != "success":
        raise ContainerVpsError(f"{what} failed: {done.error_message}")
    return done


def show_after(server_id: int, json_out: bool) -> None:
    row = queries.get_server(common.settings(), server_id=server_id, tenant_id=None)
    if json_out:
        common.print_json(server_json(row))
    else:
        common.console.print(f"server {row.id} ({row.name}): {row.status}")
