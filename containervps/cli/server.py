"""`containervps server ...`: servers, acting for a tenant (same services as the API)."""

from __future__ import annotations

from typing import Any

import typer

from containervps.cli import common
from containervps.db.models import Action, Server
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.services import audit, lifecycle, servers, tenants
from containervps.services.tokens import CLI_ACTOR

app = typer.Typer(help="Servers (VPSs) of tenants.", no_args_is_help=True)

TenantOption = typer.Option(None, "--tenant", "-t", help="Tenant id or name.")


def _dict(server: Server) -> dict[str, Any]:
    return {
        "id": server.id,
        "tenant_id": server.tenant_id,
        "name": server.name,
        "status": server.status,
        "status_detail": server.status_detail,
        "plan": server.plan,
        "image": server.image,
        "labels": server.labels,
        "ipv4": server.ipv4,
        "ssh_port": server.ssh_port,
        "protection": {"delete": server.delete_protection, "rebuild": server.rebuild_protection},
        "lxd": f"{server.lxd_project}/{server.lxd_name}",
        "limits": server.limits,
        "created": server.created_at.isoformat(),
    }


def _tenant_id(tenant: str | None) -> int | None:
    return tenants.resolve(common.settings(), tenant) if tenant else None


def _run(action: Action, *, what: str) -> Action:
    """Do the LXD work here, in this process, with a spinner."""
    assert action.id is not None
    with common.console.status(f"{what}..."):
        done = lifecycle.run_action(common.settings(), action.id, lxd=common.lxd())
    if done.status != "success":
        raise ContainerVpsError(f"{what} failed: {done.error_message}")
    return done


@app.command("list")
def list_(
    tenant: str | None = TenantOption,
    all_: bool = typer.Option(False, "--all", help="Servers of every tenant."),
    status: str | None = typer.Option(None),
    json_out: bool = common.JsonOption,
) -> None:
    """Servers of one tenant (--tenant) or of all (--all)."""
    if bool(tenant) == all_:
        raise InvalidInput("pass exactly one of --tenant T or --all")
    s = common.settings()
    page, out = 1, list[Server]()
    while True:
        rows, total = servers.list_servers(
            s, tenant_id=_tenant_id(tenant), status=status, page=page, per_page=100
        )
        out.extend(rows)
        if len(out) >= total or not rows:
            break
        page += 1
    if json_out:
        common.print_json([_dict(r) for r in out])
        return
    common.print_table(
        "servers",
        ["id", "tenant", "name", "status", "plan", "image", "ipv4", "created"],
        [(r.id, r.tenant_id, r.name, r.status, r.plan, r.image, r.ipv4, r.created_at) for r in out],
    )


@app.command("show")
def show(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """One server (id, or name with --tenant) with its limits and whether each is enforced."""
    row = servers.find_server(common.settings(), ref=server, tenant_id=_tenant_id(tenant))
    if json_out:
        common.print_json(_dict(row))
        return
    data = _dict(row)
    limits = data.pop("limits")
    common.print_table(f"server {row.id}", ["field", "value"], data.items())
    common.print_table(
        "limits",
        ["limit", "value", "enforced", "note"],
        [
            (k, f"{v['value']} {v['unit']}", v["enforced"], v.get("reason", ""))
            for k, v in limits.items()
        ],
    )


@app.command("create")
def create(
    name: str,
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id or name."),
    plan: str = typer.Option(..., help="Plan name (`plan list`)."),
    image: str = typer.Option(..., help="Image name (`image list`)."),
    label: list[str] = typer.Option([], "--label", help="key=value, repeatable."),
    ssh_key: list[str] = typer.Option([], "--ssh-key", help="Tenant key id or name, repeatable."),
    json_out: bool = common.JsonOption,
) -> None:
    """Create a server for a tenant and wait until it runs (no keys: a root password)."""
    s = common.settings()
    labels = dict(item.partition("=")[::2] for item in label)
    tenant_id = tenants.resolve(s, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.create") as note:
        note["tenant_id"] = tenant_id
        accepted = servers.create_server(
            s,
            common.lxd(),
            tenant_id=tenant_id,
            name=name,
            plan=plan,
            image=image,
            labels=labels,
            ssh_keys=list(ssh_key),
        )
        note["target"] = f"server:{accepted.server.id}"
        _run(accepted.action, what=f"creating {name}")
    if accepted.root_password:
        common.err_console.print(f"root password (shown once): {accepted.root_password}")
    _show_after(accepted.server.id or 0, json_out)


def _act(server: str, tenant: str | None, command: str, what: str) -> int:
    s = common.settings()
    row = servers.find_server(s, ref=server, tenant_id=_tenant_id(tenant))
    with audit.audited(
        s, actor=CLI_ACTOR, action=f"server.{command}", target=f"server:{row.id}"
    ) as note:
        note["tenant_id"] = row.tenant_id
        common.lxd()  # fail fast (and write nothing) when LXD is down
        accepted = servers.request_action(s, tenant_id=None, server_id=row.id or 0, command=command)
        _run(accepted.action, what=f"{what} {row.name}")
    return row.id or 0


def _show_after(server_id: int, json_out: bool) -> None:
    row = servers.get_server(common.settings(), server_id=server_id, tenant_id=None)
    if json_out:
        common.print_json(_dict(row))
    else:
        common.console.print(f"server {row.id} ({row.name}): {row.status}")


@app.command("delete")
def delete(server: str, tenant: str | None = TenantOption) -> None:
    """Delete a server and its container (frees the quota)."""
    server_id = _act(server, tenant, "delete_server", "deleting")
    common.console.print(f"server {server_id} deleted")


@app.command("start")
def start(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """Power a server on."""
    _show_after(_act(server, tenant, "poweron", "starting"), json_out)


@app.command("stop")
def stop(
    server: str,
    tenant: str | None = TenantOption,
    hard: bool = typer.Option(False, "--hard", help="Power off at once (no graceful shutdown)."),
    json_out: bool = common.JsonOption,
) -> None:
    """Shut a server down gracefully (hard after shutdown_timeout), or at once with --hard."""
    _show_after(_act(server, tenant, "poweroff" if hard else "shutdown", "stopping"), json_out)


@app.command("reboot")
def reboot(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """Reboot a server."""
    _show_after(_act(server, tenant, "reboot", "rebooting"), json_out)
