"""`containervps plan ...`: the plan catalogue."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.services import audit, plans
from containervps.services.tokens import CLI_ACTOR

app = typer.Typer(help="Server plans (sizes and limits).", no_args_is_help=True)

COLUMNS = [
    "name",
    "vcpus",
    "memory_mib",
    "disk_gib",
    "disk_read_iops",
    "disk_write_iops",
    "net_ingress_mbit",
    "net_egress_mbit",
    "max_processes",
    "transfer_gib",
]


@app.command("list")
def list_(json_out: bool = common.JsonOption) -> None:
    """Every plan."""
    rows = plans.list_plans(common.settings())
    if json_out:
        common.print_json([r.model_dump(exclude={"created_at"}) for r in rows])
        return
    common.print_table("plans", COLUMNS, [[getattr(r, c) for c in COLUMNS] for r in rows])


@app.command("create")
def create(
    name: str,
    vcpus: int = typer.Option(...),
    memory_mib: int = typer.Option(...),
    disk_gib: int = typer.Option(...),
    disk_read_iops: int = typer.Option(...),
    disk_write_iops: int = typer.Option(...),
    net_ingress_mbit: int = typer.Option(...),
    net_egress_mbit: int = typer.Option(...),
    max_processes: int = typer.Option(...),
    transfer_gib: int = typer.Option(...),
    description: str = typer.Option(""),
) -> None:
    """Add a plan."""
    s = common.settings()
    spec = plans.PlanSpec(
        name=name,
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
        disk_read_iops=disk_read_iops,
        disk_write_iops=disk_write_iops,
        net_ingress_mbit=net_ingress_mbit,
        net_egress_mbit=net_egress_mbit,
        max_processes=max_processes,
        transfer_gib=transfer_gib,
        description=description,
    )
    with audit.audited(s, actor=CLI_ACTOR, action="plan.create", target=f"plan:{name}"):
        plans.create_plan(s, spec)
    common.console.print(f"plan {name} created")
