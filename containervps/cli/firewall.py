"""`containervps firewall ...`: the tenants' firewalls as the operator sees them; rebuild the
kernel's filter table from the database."""

from __future__ import annotations

import time

import typer

from containervps.cli import common
from containervps.services.firewalls import crud, enforce
from containervps.services.tenancy import tenants

app = typer.Typer(help="Tenant firewalls and the filter table.", no_args_is_help=True)

MAX_LIST = 100_000


@app.command("list")
def list_(
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant id or name."),
    json_out: bool = common.JsonOption,
) -> None:
    """Firewalls of one tenant or of all."""
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant) if tenant else None
    rows, _ = crud.list_firewalls(s, tenant_id=tenant_id, per_page=MAX_LIST)
    views = crud.public(s, rows)
    if json_out:
        common.print_json([v.model_dump(mode="json") for v in views])
        return
    common.print_table(
        "firewalls",
        ["id", "tenant", "name", "rules", "applied to servers"],
        [
            [v.id, r.tenant_id, v.name, len(v.rules), ", ".join(map(str, v.applied_to_servers))]
            for v, r in zip(views, rows, strict=True)
        ],
    )


@app.command("show")
def show(firewall_id: common.IdArgument) -> None:
    """One firewall with its rules and targets (JSON)."""
    s = common.settings()
    firewall = crud.get_firewall(s, tenant_id=None, firewall_id=firewall_id)
    view = crud.public(s, [firewall])[0].model_dump(mode="json")
    common.print_json({**view, "tenant_id": firewall.tenant_id})


@app.command("sync")
def sync() -> None:
    """Rebuild the filter table (firewalls, tenant isolation) from the database."""
    s = common.settings()
    started = time.monotonic()
    enforce.sync(s)
    common.console.print(
        f"table inet {s.net_filter_table} loaded in {time.monotonic() - started:.2f} s"
    )
