"""`containervps server ...`: servers, acting for a tenant (same services as the API)."""

from __future__ import annotations

import typer

from containervps.cli import common, hits_table
from containervps.cli.shared import TenantOption, find, run_here, server_json, show_after, tenant_id
from containervps.db.models import Server
from containervps.errors import InvalidInput
from containervps.schemas.event import EventPublic
from containervps.services import events
from containervps.services.metering import limit_hits
from containervps.services.servers import create as create_service
from containervps.services.servers import delete as delete_service
from containervps.services.servers import power, queries
from containervps.services.tenancy import audit, tenants
from containervps.services.tenancy.tokens import CLI_ACTOR

app = typer.Typer(help="Servers (VPSs) of tenants.", no_args_is_help=True)


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
        rows, total = queries.list_servers(
            s, tenant_id=tenant_id(tenant), status=status, page=page, per_page=100
        )
        out.extend(rows)
        if len(out) >= total or not rows:
            break
        page += 1
    if json_out:
        common.print_json([server_json(r) for r in out])
        return
    common.print_table(
        "servers",
        ["id", "tenant", "name", "status", "plan", "image", "ipv4", "member", "created"],
        [
            (r.id, r.tenant_id, r.name, r.status, r.plan, r.image, r.ipv4, r.member, r.created_at)
            for r in out
        ],
    )


@app.command("events")
def events_(
    server: str,
    tenant: str | None = TenantOption,
    limit: int = typer.Option(25, min=1, max=100, help="Newest events shown."),
    json_out: bool = common.JsonOption,
) -> None:
    """What the platform saw or did to a server (OOM kills, repairs, rolled-back actions)."""
    row = find(server, tenant)
    assert row.id is not None
    rows, _ = events.list_events(
        common.settings(), tenant_id=None, server_id=row.id, per_page=limit
    )
    if json_out:
        common.print_json([EventPublic.of(e).model_dump(mode="json") for e in rows])
        return
    common.print_table(
        f"events of server {row.id}",
        ["id", "at", "type", "severity", "message"],
        [(e.id, e.at, e.type, e.severity, e.message) for e in rows],
    )


@app.command("hits")
def hits(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """Which limits the server hit since it started: the kernel's counters of enforcing its
    slice (as GET /v1/servers/{id}/limits/hits)."""
    row = find(server, tenant)
    read = limit_hits.server_hits(common.settings(), common.lxd(), row)
    if json_out:
        common.print_json({"limit_hits": read.model_dump()})
        return
    common.print_table(
        f"limit hits of server {row.id} {row.name}",
        ["counter", "value", "where / why"],
        hits_table.fields(read),
    )


@app.command("show")
def show(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """One server (id, or name with --tenant) with its limits and whether each is enforced."""
    row = find(server, tenant)
    data = server_json(row)
    if json_out:
        common.print_json(data)
        return
    limits = data.pop("limits")
    data["lxd"] = f"{row.lxd_project}/{row.lxd_name}"
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
    owner = tenants.resolve(s, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.create") as note:
        note["tenant_id"] = owner
        accepted = create_service.create_server(
            s,
            common.lxd(),
            tenant_id=owner,
            name=name,
            plan=plan,
            image=image,
            labels=labels,
            ssh_keys=list(ssh_key),
        )
        note["target"] = f"server:{accepted.server.id}"
        run_here(accepted.action, what=f"creating {name}")
    if accepted.root_password:
        common.err_console.print(f"root password (shown once): {accepted.root_password}")
    show_after(accepted.server.id or 0, json_out)


def _act(server: str, tenant: str | None, command: str, what: str) -> int:
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(
        s, actor=CLI_ACTOR, action=f"server.{command}", target=f"server:{row.id}"
    ) as note:
        note["tenant_id"] = row.tenant_id
        common.lxd()  # fail fast (and write nothing) when LXD is down
        if command == "delete_server":
            accepted = delete_service.request_delete(s, tenant_id=None, server_id=row.id or 0)
        else:
            accepted = power.request_power(
                s, tenant_id=None, server_id=row.id or 0, command=command
            )
        run_here(accepted.action, what=f"{what} {row.name}")
    return row.id or 0


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
    show_after(_act(server, tenant, "poweron", "starting"), json_out)


@app.command("stop")
def stop(
    server: str,
    tenant: str | None = TenantOption,
    hard: bool = typer.Option(False, "--hard", help="Power off at once (no graceful shutdown)."),
    json_out: bool = common.JsonOption,
) -> None:
    """Shut a server down gracefully (hard after shutdown_timeout), or at once with --hard."""
    show_after(_act(server, tenant, "poweroff" if hard else "shutdown", "stopping"), json_out)


@app.command("reboot")
def reboot(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """Reboot a server."""
    show_after(_act(server, tenant, "reboot", "rebooting"), json_out)
