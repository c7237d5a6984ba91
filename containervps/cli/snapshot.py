"""`containervps server snapshot ...`: snapshots of a server's disk (acting as admin)."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.cli.shared import TenantOption, find, run_here
from containervps.schemas.snapshot import SnapshotPublic
from containervps.services.servers import restore, snapshots
from containervps.services.tenancy import audit
from containervps.services.tenancy.tokens import CLI_ACTOR

app = typer.Typer(help="Snapshots of a server.", no_args_is_help=True)


@app.command("create")
def snapshot_create(
    server: str,
    name: str | None = typer.Option(None, help="Default: snap-<UTC time>."),
    tenant: str | None = TenantOption,
) -> None:
    """Snapshot a server's disk."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.create", target=f"server:{row.id}"):
        snap = snapshots.create_snapshot(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, name=name
        )
    common.console.print(f"snapshot {snap.id} ({snap.name}) of server {row.id}")


@app.command("list")
def snapshot_list(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """A server's snapshots."""
    row = find(server, tenant)
    rows = snapshots.list_snapshots(common.settings(), server_id=row.id or 0, tenant_id=None)
    if json_out:
        common.print_json([SnapshotPublic.of(r).model_dump() for r in rows])
        return
    common.print_table(
        f"snapshots of server {row.id}",
        ["id", "name", "status", "created"],
        [(r.id, r.name, r.status, r.created_at) for r in rows],
    )


@app.command("restore")
def snapshot_restore(
    server: str, snapshot_id: common.IdArgument, tenant: str | None = TenantOption
) -> None:
    """Put a server's disk back as it was at a snapshot."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.restore", target=f"server:{row.id}"):
        common.lxd()
        accepted = restore.request_restore(
            s, server_id=row.id or 0, tenant_id=None, snapshot_id=snapshot_id
        )
        run_here(accepted.action, what=f"restoring {row.name}")
    name = accepted.action.params["snapshot"]
    common.console.print(f"server {row.id} restored from snapshot {snapshot_id} ({name})")


@app.command("delete")
def snapshot_delete(
    server: str, snapshot_id: common.IdArgument, tenant: str | None = TenantOption
) -> None:
    """Delete a snapshot."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.delete", target=f"server:{row.id}"):
        snapshots.delete_snapshot(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, snapshot_id=snapshot_id
        )
    common.console.print(f"snapshot {snapshot_id} deleted")
