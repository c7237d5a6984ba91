"""`containervps tenant ...`: tenants, their quotas and LXD projects."""

from __future__ import annotations

from typing import Any

import typer

from containervps.cli import common
from containervps.cli.model_options import model_options
from containervps.schemas.common import build
from containervps.schemas.quota import QuotaBase, QuotaUpdate
from containervps.services.tenancy import audit, tenants
from containervps.services.tenancy.tenants import TenantView
from containervps.services.tenancy.tokens import CLI_ACTOR

app = typer.Typer(help="Tenants, quotas and their LXD projects.", no_args_is_help=True)


def _print(views: list[TenantView], json_out: bool, *, title: str) -> None:
    if json_out:
        common.print_json([v.public.model_dump() for v in views])
        return
    common.print_table(
        title,
        [
            "id",
            "name",
            "project",
            "servers",
            "vCPUs",
            "memory MiB",
            "disk GiB",
            "processes",
            "snapshots",
        ],
        [
            (
                v.tenant.id,
                v.tenant.name,
                v.tenant.lxd_project,
                *(f"{used}/{getattr(v.quota, f'max_{name}')}" for name, used in v.usage.items()),
            )
            for v in views
        ],
    )


def _quota(base: QuotaBase, given: dict[str, Any]) -> QuotaUpdate:
    """``base`` with the values given on the command line."""
    merged = {**base.limits(), **{k: v for k, v in given.items() if v is not None}}
    return build(QuotaUpdate, **merged)


@app.command("create")
@model_options(QuotaBase, into="quota", required=False)
def create(name: str, quota: dict[str, Any], json_out: bool = common.JsonOption) -> None:
    """Create a tenant and its restricted LXD project (quota values default from settings)."""
    s = common.settings()
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.create", target=name) as note:
        spec = _quota(tenants.default_quota(s), quota)
        view = tenants.create_tenant(s, common.lxd(), name=name, quota=spec)
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
@model_options(QuotaBase, into="quota", required=False)
def set_quota(tenant: str, quota: dict[str, Any], json_out: bool = common.JsonOption) -> None:
    """Change the given quota values (others stay) and mirror them into LXD."""
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant)
    spec = _quota(tenants.get_tenant(s, tenant_id).quota, quota)
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.set-quota", target=f"tenant:{tenant_id}"):
        view = tenants.set_quota(s, common.lxd(), tenant_id=tenant_id, quota=spec)
    _print([view], json_out, title="quota updated")


@app.command("delete")
def delete(tenant: str) -> None:
    """Delete a tenant without servers (revokes its tokens, deletes its LXD project)."""
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="tenant.delete", target=f"tenant:{tenant_id}"):
        tenants.delete_tenant(s, common.lxd(), tenant_id=tenant_id)
    common.console.print(f"tenant {tenant_id} deleted")
