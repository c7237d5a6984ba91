"""`containervps tenant ...`: tenants, their quotas and LXD projects."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.services import audit, tenants
from containervps.services.tenants import QuotaSpec, TenantView
from containervps.services.tokens import CLI_ACTOR

app = typer.Typer(help="Tenants, quotas and their LXD projects.", no_args_is_help=True)


def _dict(view: TenantView) -> dict[str, object]:
    q, u = view.quota, view.usage
    return {
        "id": view.tenant.id,
        "name": view.tenant.name,
        "lxd_project": view.tenant.lxd_project,
        "created": view.tenant.created_at.isoformat(),
        "limits": {
            "servers": {"max": q.max_servers, "used": u.servers},
            "vcpus": {"max": q.max_vcpus, "used": u.vcpus},
            "memory_mib": {"max": q.max_memory_mib, "used": u.memory_mib},
            "disk_gib": {"max": q.max_disk_gib, "used": u.disk_gib},
            "processes": {"max": q.max_processes, "used": u.processes},
        },
    }


def _print(views: list[TenantView], json_out: bool, *, title: str) -> None:
    if json_out:
        common.print_json([_dict(v) for v in views])
        return
    common.print_table(
        title,
        ["id", "name", "project", "servers", "vCPUs", "memory MiB", "disk GiB", "processes"],
        [
            (
                v.tenant.id,
                v.tenant.name,
                v.tenant.lxd_project,
                f"{v.usage.servers}/{v.quota.max_servers}",
                f"{v.usage.vcpus}/{v.quota.max_vcpus}",
                f"{v.usage.memory_mib}/{v.quota.max_memory_mib}",
                f"{v.usage.disk_gib}/{v.quota.max_disk_gib}",
                f"{v.usage.processes}/{v.quota.max_processes}",
            )
            for v in views
        ],
    )


@app.command("create")
def create(
    name: str,
    max_servers: int | None = typer.Option(None, help="Default from settings."),
    max_vcpus: int | None = typer.Option(None),
    max_memory_mib: int | None = typer.Option(None),
    max_disk_gib: int | None = typer.Option(None),
    max_processes: int | None = typer.Option(None),
    max_snapshots: int | None = typer.Option(None),
    json_out: bool = common.JsonOption,
) -> None:
    """Create a tenant and its restricted LXD project."""
    s = common.settings()
    base = QuotaSpec.defaults(s)
    quota = QuotaSpec(
        max_servers=max_servers or base.max_servers,
        max_vcpus=max_vcpus or base.max_vcpus,
        max_memory_mib=max_memory_mib or base.max_memory_mib,
        max_disk_gib=max_disk_gib or base.max_disk_gib,
        max_processes=max_processes or base.max_processes,
        max_snapshots=max_snapshots or base.max_snapshots,
    )
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.create", target=name) as note:
        view = tenants.create_tenant(s, common.lxd(), name=name, quota=quota)
        note["target"] = f"tenant:{view.tenant.id}"
    _print([view], json_out, title="tenant created")


@app.command("list")
def list_(json_out: bool = common.JsonOption) -> None:
    """Every tenant with quota and usage."""
    _print(tenants.list_tenants(common.settings()), json_out, title="tenants")


@app.command("show")
def show(tenant: str, json_out: bool = common.JsonOption) -> None:
    """One tenant (id or name)."""
    s = common.settings()
    _print([tenants.get_tenant(s, tenants.resolve(s, tenant))], json_out, title="tenant")


@app.command("set-quota")
def set_quota(
    tenant: str,
    max_servers: int | None = typer.Option(None),
    max_vcpus: int | None = typer.Option(None),
    max_memory_mib: int | None = typer.Option(None),
    max_disk_gib: int | None = typer.Option(None),
    max_processes: int | None = typer.Option(None),
    max_snapshots: int | None = typer.Option(None),
    json_out: bool = common.JsonOption,
) -> None:
    """Change the given quota values (others stay) and mirror them into LXD."""
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant)
    q = tenants.get_tenant(s, tenant_id).quota
    quota = QuotaSpec(
        max_servers=max_servers or q.max_servers,
        max_vcpus=max_vcpus or q.max_vcpus,
        max_memory_mib=max_memory_mib or q.max_memory_mib,
        max_disk_gib=max_disk_gib or q.max_disk_gib,
        max_processes=max_processes or q.max_processes,
        max_snapshots=max_snapshots or q.max_snapshots,
    )
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.set-quota", target=f"tenant:{tenant_id}"):
        view = tenants.set_quota(s, common.lxd(), tenant_id=tenant_id, quota=quota)
    _print([view], json_out, title="quota updated")


@app.command("delete")
def delete(tenant: str) -> None:
    """Delete a tenant without servers (revokes its tokens, deletes its LXD project)."""
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.delete", target=f"tenant:{tenant_id}"):
        tenants.delete_tenant(s, common.lxd(), tenant_id=tenant_id)
    common.console.print(f"tenant {tenant_id} deleted")
